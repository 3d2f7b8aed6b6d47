/*
 * tls: OpenSSL behind the small interface of tls.h. Called by the
 * connection module (reading and writing), the daemon (its certificate,
 * turnchatd --fingerprint and --make-certificate) and the client (its
 * handshake, and the key it pins or the chain it verifies).
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_config {
	SSL_CTX *ctx;
};

struct tls {
	SSL *ssl;
	bool server;
	bool looked;    /* the server has seen its first byte */
	bool plaintext; /* ...and it was not TLS */
	char error[TLS_ERROR_MAX];
};

/* OpenSSL's last error in words; what people meet most often, rephrased. */
static void describe_error(char *error, size_t size, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *why;

	switch (ERR_GET_REASON(e)) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
		why = "the other side offers only TLS versions older than 1.2";
		break;
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		why = "no cipher suite in common with the other side";
		break;
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		why = "the other side does not trust this certificate";
		break;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
		why = "what arrived is not TLS";
		break;
	default:
		why = e ? ERR_reason_error_string(e) : NULL;
		if (why == NULL)
			why = "unknown TLS error";
	}
	snprintf(error, size, "%s%s%s", what ? what : "", what ? ": " : "", why);
	ERR_clear_error();
}

static SSL_CTX *new_context(const SSL_METHOD *method)
{
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle connections keep no buffers; writes go out record by record
	 * from a queue that may move between tries. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One read(2) per record, not one for its header and one for the rest:
	 * what it reads beyond a record waits in OpenSSL (tls_has_pending). */
	SSL_CTX_set_read_ahead(ctx, 1);
	return ctx;
}

struct tls_config *tls_server_config(const char *certificate_file, const char *key_file, char *error,
				     size_t error_size)
{
	struct tls_config *config = calloc(1, sizeof(*config));
	SSL_CTX *ctx = new_context(TLS_server_method());
	const char *failed = NULL, *file = NULL;

	if (config == NULL || ctx == NULL)
		failed = "out of memory";
	else if (SSL_CTX_use_certificate_chain_file(ctx, certificate_file) != 1)
		failed = "cannot use the certificate", file = certificate_file;
	else if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
		failed = "cannot use the key", file = key_file;
	else if (SSL_CTX_check_private_key(ctx) != 1)
		failed = "the key does not belong to the certificate", file = key_file;
	if (failed) {
		char what[512];
		snprintf(what, sizeof(what), "%s%s%s", file ? file : "", file ? ": " : "", failed);
		describe_error(error, error_size, what);
		SSL_CTX_free(ctx);
		free(config);
		return NULL;
	}
	/* One ticket is enough to resume a dropped connection quickly. */
	SSL_CTX_set_num_tickets(ctx, 1);
	config->ctx = ctx;
	return config;
}

struct tls_config *tls_client_config(const char *ca, char *error, size_t error_size)
{
	struct tls_config *config = calloc(1, sizeof(*config));
	SSL_CTX *ctx = new_context(TLS_client_method());
	bool ok = config && ctx;

	if (ok && ca && strcmp(ca, "system") == 0)
		ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
	else if (ok && ca)
		ok = SSL_CTX_load_verify_locations(ctx, ca, NULL) == 1;
	if (!ok) {
		describe_error(error, error_size, ca ? ca : "out of memory");
		SSL_CTX_free(ctx);
		free(config);
		return NULL;
	}
	/* Without a CA the caller pins the key: the chain means nothing then. */
	SSL_CTX_set_verify(ctx, ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	config->ctx = ctx;
	return config;
}

void tls_config_free(struct tls_config *config)
{
	if (config == NULL)
		return;
	SSL_CTX_free(config->ctx);
	free(config);
}

static struct tls *start(struct tls_config *config, int fd)
{
	struct tls *tls = calloc(1, sizeof(*tls));
	if (tls == NULL)
		return NULL;
	tls->ssl = SSL_new(config->ctx);
	if (tls->ssl == NULL || SSL_set_fd(tls->ssl, fd) != 1) {
		SSL_free(tls->ssl);
		free(tls);
		ERR_clear_error();
		return NULL;
	}
	return tls;
}

struct tls *tls_server_start(struct tls_config *config, int fd)
{
	struct tls *tls = start(config, fd);
	if (tls) {
		tls->server = true;
		SSL_set_accept_state(tls->ssl);
	}
	return tls;
}

/* True when host is an IP address, which is neither SNI nor a DNS name. */
static bool is_address(const char *host)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
	ASN1_OCTET_STRING_free(ip);
	ERR_clear_error();
	return ip != NULL;
}

struct tls *tls_client_start(struct tls_config *config, int fd, const char *host)
{
	struct tls *tls = start(config, fd);
	if (tls == NULL)
		return NULL;
	bool address = is_address(host);
	X509_VERIFY_PARAM *param = SSL_get0_param(tls->ssl);
	if ((!address &&
	     (SSL_set_tlsext_host_name(tls->ssl, host) != 1 || SSL_set1_host(tls->ssl, host) != 1)) ||
	    (address && X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)) {
		tls_free(tls);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(tls->ssl);
	return tls;
}

void tls_free(struct tls *tls)
{
	if (tls == NULL)
		return;
	SSL_free(tls->ssl);
	free(tls);
}

/*
 * A server's first byte tells TLS (a handshake record) from someone typing:
 * plain text is refused by name, not as an obscure record error. OpenSSL
 * is not let near the socket before that byte is seen, or it could take
 * part of a record and leave the middle of it to be judged. Returns 1 to
 * go on, 0 to wait for input (errno EAGAIN), -1 for plain text (EPROTO).
 */
static int look_first(struct tls *tls, uint32_t *wait)
{
	unsigned char first;

	if (!tls->server || tls->looked)
		return 1;
	ssize_t n = recv(SSL_get_fd(tls->ssl), &first, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		*wait = EPOLLIN;
		errno = EAGAIN;
		return 0;
	}
	tls->looked = true; /* an end or an error: OpenSSL meets it too */
	if (n != 1 || first == 0x16)
		return 1;
	tls->plaintext = true;
	snprintf(tls->error, sizeof(tls->error),
		 "plain text arrived on the TLS port (a client without TLS?)");
	errno = EPROTO;
	return -1;
}

/* What an SSL call's result means; -1 with errno set, or n. */
static ssize_t outcome(struct tls *tls, int n, uint32_t *wait)
{
	if (n > 0)
		return n;
	int saved = errno;
	switch (SSL_get_error(tls->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		*wait = EPOLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*wait = EPOLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (saved == 0)
			return 0;
		snprintf(tls->error, sizeof(tls->error), "%s", strerror(saved));
		errno = saved;
		return -1;
	default:
		describe_error(tls->error, sizeof(tls->error),
			       SSL_is_init_finished(tls->ssl) ? NULL : "TLS handshake failed");
		errno = EPROTO;
		return -1;
	}
}

ssize_t tls_read(struct tls *tls, void *buf, size_t len, uint32_t *wait)
{
	if (look_first(tls, wait) <= 0)
		return -1;
	ERR_clear_error();
	return outcome(tls, SSL_read(tls->ssl, buf, len > INT_MAX ? INT_MAX : (int)len), wait);
}

ssize_t tls_write(struct tls *tls, const void *buf, size_t len, uint32_t *wait)
{
	if (look_first(tls, wait) <= 0)
		return -1;
	ERR_clear_error();
	return outcome(tls, SSL_write(tls->ssl, buf, len > INT_MAX ? INT_MAX : (int)len), wait);
}

bool tls_has_pending(const struct tls *tls)
{
	/* Records read ahead but not yet decrypted count too: epoll cannot see
	 * them either. (SSL_pending counts only decrypted bytes.) */
	return SSL_has_pending(tls->ssl) == 1;
}

int tls_handshake(struct tls *tls, uint32_t *wait)
{
	int looked = look_first(tls, wait);
	if (looked <= 0)
		return looked;
	ERR_clear_error();
	int n = SSL_do_handshake(tls->ssl);
	if (n == 1)
		return 1;
	ssize_t rc = outcome(tls, n, wait);
	if (rc == 0) {
		snprintf(tls->error, sizeof(tls->error),
			 "the connection closed during the handshake");
		return -1;
	}
	return errno == EAGAIN ? 0 : -1;
}

bool tls_handshake_done(const struct tls *tls)
{
	return SSL_is_init_finished(tls->ssl);
}

void tls_close_notify(struct tls *tls)
{
	if (SSL_is_init_finished(tls->ssl))
		SSL_shutdown(tls->ssl);
	ERR_clear_error();
}

const char *tls_error(const struct tls *tls)
{
	return tls->error[0] ? tls->error : "unknown TLS error";
}

bool tls_error_was_plaintext(const struct tls *tls)
{
	return tls->plaintext;
}

const char *tls_version(const struct tls *tls)
{
	return SSL_get_version(tls->ssl);
}

bool tls_peer_verified(const struct tls *tls, char *error, size_t error_size)
{
	long result = SSL_get_verify_result(tls->ssl);
	if (result == X509_V_OK && SSL_get0_peer_certificate(tls->ssl))
		return true;
	snprintf(error, error_size, "%s", X509_verify_cert_error_string(result));
	return false;
}

/* "SHA256:" and the unpadded base64 of the key's SHA-256. */
static bool fingerprint(X509 *cert, char *text, size_t size)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];

	int n = cert ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der) : -1;
	bool ok = n > 0 && EVP_Digest(der, (size_t)n, md, &md_len, EVP_sha256(), NULL) == 1;
	OPENSSL_free(der);
	if (!ok || size < TLS_FINGERPRINT_MAX)
		return false;
	int len = EVP_EncodeBlock(b64, md, (int)md_len);
	while (len > 0 && b64[len - 1] == '=')
		len--;
	snprintf(text, size, "SHA256:%.*s", len, b64);
	return true;
}

bool tls_peer_fingerprint(const struct tls *tls, char *text, size_t size)
{
	return fingerprint(SSL_get0_peer_certificate(tls->ssl), text, size);
}

bool tls_file_fingerprint(const char *certificate_file, char *text, size_t size, char *error,
			  size_t error_size)
{
	FILE *in = fopen(certificate_file, "r");
	if (in == NULL) {
		snprintf(error, error_size, "%s: %s", certificate_file, strerror(errno));
		return false;
	}
	X509 *cert = PEM_read_X509(in, NULL, NULL, NULL);
	fclose(in);
	bool ok = fingerprint(cert, text, size);
	X509_free(cert);
	if (!ok)
		describe_error(error, error_size, certificate_file);
	return ok;
}

/* Writes with PEM_write into a file that must not exist yet. */
static bool write_new(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, char *error,
		      size_t error_size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (out == NULL) {
		snprintf(error, error_size, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	bool ok = key ? PEM_write_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL) == 1
		      : PEM_write_X509(out, cert) == 1;
	if (fclose(out) != 0 || !ok) {
		snprintf(error, error_size, "%s: cannot write it", path);
		unlink(path);
		return false;
	}
	return true;
}

static X509 *self_signed(EVP_PKEY *key, const char *name)
{
	X509 *cert = X509_new();
	X509V3_CTX v3;
	char san[300];
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	bool ok = cert && RAND_bytes(serial, sizeof(serial)) == 1;

	serial[0] &= 0x7f; /* a positive serial number */
	ok = ok && X509_set_version(cert, 2) && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) &&
	     X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
	     X509_gmtime_adj(X509_getm_notAfter(cert), 3650L * 24 * 3600) &&
	     X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
					(const unsigned char *)name, -1, -1, 0) &&
	     X509_set_issuer_name(cert, X509_get_subject_name(cert)) && X509_set_pubkey(cert, key);
	BN_free(bn);
	snprintf(san, sizeof(san), "%s:%s", is_address(name) ? "IP" : "DNS", name);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = ok ? X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san) : NULL;
	ok = ext && X509_add_ext(cert, ext, -1) && X509_sign(cert, key, EVP_sha256()) > 0;
	X509_EXTENSION_free(ext);
	if (!ok) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

bool tls_make_self_signed(const char *certificate_file, const char *key_file, const char *name,
			  char *error, size_t error_size)
{
	if (access(key_file, F_OK) == 0 || access(certificate_file, F_OK) == 0) {
		snprintf(error, error_size, "%s already exists; nothing was changed",
			 access(key_file, F_OK) == 0 ? key_file : certificate_file);
		return false;
	}
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? self_signed(key, name) : NULL;
	bool ok = cert != NULL;
	if (!ok)
		describe_error(error, error_size, "cannot make a key and certificate");
	ok = ok && write_new(key_file, 0600, key, NULL, error, error_size);
	if (ok && !write_new(certificate_file, 0644, NULL, cert, error, error_size)) {
		unlink(key_file);
		ok = false;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return ok;
}
