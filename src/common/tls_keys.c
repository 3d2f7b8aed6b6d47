/*
 * tls_keys: the part of the tls module that deals in keys and certificate
 * files: fingerprints (for turnchatd --fingerprint, and through tls.c for
 * the client's known_hosts) and the self-signed pair of --make-certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "tls_impl.h"

/* True when host is an IP address, which is neither SNI nor a DNS name. */
bool tls_is_address(const char *host)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
	ASN1_OCTET_STRING_free(ip);
	ERR_clear_error();
	return ip != NULL;
}

/* "SHA256:" and the unpadded base64 of the key's SHA-256. */
bool tls_key_fingerprint(X509 *cert, char *text, size_t size)
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
	bool ok = tls_key_fingerprint(cert, text, size);
	X509_free(cert);
	if (!ok)
		tls_describe_error(error, error_size, certificate_file);
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
	snprintf(san, sizeof(san), "%s:%s", tls_is_address(name) ? "IP" : "DNS", name);
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
		tls_describe_error(error, error_size, "cannot make a key and certificate");
	ok = ok && write_new(key_file, 0600, key, NULL, error, error_size);
	if (ok && !write_new(certificate_file, 0644, NULL, cert, error, error_size)) {
		unlink(key_file);
		ok = false;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return ok;
}
