/*
 * tls_impl: what tls.c and tls_keys.c, the two files of the tls module,
 * share; nobody else includes it (it includes OpenSSL).
 */
#ifndef TURNCHAT_TLS_IMPL_H
#define TURNCHAT_TLS_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

/* OpenSSL's last error in words, after what (may be NULL); clears it. */
void tls_describe_error(char *error, size_t size, const char *what);
/* "SHA256:" and the unpadded base64 of the SHA-256 of cert's public key. */
bool tls_key_fingerprint(X509 *cert, char *text, size_t size);
/* True when host is an IP address, which is neither SNI nor a DNS name. */
bool tls_is_address(const char *host);

#endif
