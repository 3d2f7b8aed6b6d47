/*
 * tls: OpenSSL behind the small interface of tls.h. Called by the
 * transport (reading and writing), the daemon's certificate module (its
 * context) and the client's trust module (its handshake, and the key it
 * pins or the chain it verifies). Keys and certificate files are
 * tls_keys.c's.
 */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tls_impl.h"

struct tls {
	SSL *ssl;
	bool server;
	bool looked;    /* the server has seen its first byte */
	bool plaintext; /* ...and it was not TLS */
	char error[TLS_ERROR_MAX];
};

/* OpenSSL's last error in words; what people meet most often, rephrased. */
void tls_describe_error(char *error, size_t size, const char *what)
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

/* A tls_config is an SSL_CTX; the type only keeps OpenSSL out of tls.h. */
static SSL_CTX *context_of(struct tls_config *config)
{
	return (SSL_CTX *)config;
}

struct tls_config *tls_server_config(const char *certificate_file, const char *key_file, char *error,
				     size_t error_size)
{
	SSL_CTX *ctx = new_context(TLS_server_method());
	const char *failed = NULL, *file = NULL;

	if (ctx == NULL)
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
		tls_describe_error(error, error_size, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* One ticket is enough to resume a dropped connection quickly. */
	SSL_CTX_set_num_tickets(ctx, 1);
	return (struct tls_config *)ctx;
}

struct tls_config *tls_client_config(const char *ca, char *error, size_t error_size)
{
	SSL_CTX *ctx = new_context(TLS_client_method());
	bool ok = ctx != NULL;

	if (ok && ca && strcmp(ca, "system") == 0)
		ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
	else if (ok && ca)
		ok = SSL_CTX_load_verify_locations(ctx, ca, NULL) == 1;
	if (!ok) {
		tls_describe_error(error, error_size, ca ? ca : "out of memory");
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Without a CA the caller pins the key: the chain means nothing then. */
	SSL_CTX_set_verify(ctx, ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return (struct tls_config *)ctx;
}

void tls_config_free(struct tls_config *config)
{
	SSL_CTX_free(context_of(config));
}

static struct tls *start(struct tls_config *config, int fd)
{
	struct tls *tls = calloc(1, sizeof(*tls));
	if (tls == NULL)
		return NULL;
	tls->ssl = SSL_new(context_of(config));
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

struct tls *tls_client_start(struct tls_config *config, int fd, const char *host)
{
	struct tls *tls = start(config, fd);
	if (tls == NULL)
		return NULL;
	bool address = tls_is_address(host);
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
		tls_describe_error(tls->error, sizeof(tls->error),
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

bool tls_peer_fingerprint(const struct tls *tls, char *text, size_t size)
{
	return tls_key_fingerprint(SSL_get0_peer_certificate(tls->ssl), text, size);
}
