/*
 * tls: the one place that includes OpenSSL. A TLS connection here is a
 * non-blocking socket wrapped so that reading and writing look like read(2)
 * and send(2) to the connection module: -1 with errno EAGAIN when it must
 * wait, and then *wait says whether for EPOLLIN or EPOLLOUT (a read may need
 * to write during a handshake, a write to read). TLS 1.2 and 1.3 only, the
 * system's cipher policy, no renegotiation, no compression; idle
 * connections give back OpenSSL's buffers.
 *
 * Keys are named by the SHA-256 of the certificate's public key (its
 * SubjectPublicKeyInfo), written as ssh writes key fingerprints:
 * "SHA256:" and unpadded base64.
 */
#ifndef TURNCHAT_TLS_H
#define TURNCHAT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* "SHA256:" + 43 characters of base64 + NUL. */
#define TLS_FINGERPRINT_MAX 51
/* Room for a reason in words. */
#define TLS_ERROR_MAX 256

struct tls_config; /* what every connection of one side shares */
struct tls;        /* one connection */

/* The daemon's: certificate chain and key (PEM files). NULL with a message
 * in error (file and reason) when either cannot be used. */
struct tls_config *tls_server_config(const char *certificate_file, const char *key_file, char *error,
				     size_t error_size);
/* The client's. ca: NULL to check nothing here (the caller pins the key),
 * "system" for the system's trusted CAs, else a PEM file of CAs. */
struct tls_config *tls_client_config(const char *ca, char *error, size_t error_size);
void tls_config_free(struct tls_config *config);

/* Wraps the connected, non-blocking socket fd (not taken over: the caller
 * still closes it). host: the name the client checks the certificate
 * against (with a CA) and sends as SNI. NULL when out of memory. */
struct tls *tls_server_start(struct tls_config *config, int fd);
struct tls *tls_client_start(struct tls_config *config, int fd, const char *host);
void tls_free(struct tls *tls);

/* As read(2) and send(2), see above; errno EPROTO on a TLS failure, which
 * tls_error() then explains. 0 from tls_read: the peer closed. */
ssize_t tls_read(struct tls *tls, void *buf, size_t len, uint32_t *wait);
ssize_t tls_write(struct tls *tls, const void *buf, size_t len, uint32_t *wait);
/* Bytes waiting inside OpenSSL, decrypted or read ahead: epoll cannot see them. */
bool tls_has_pending(const struct tls *tls);
/* Drives the handshake: 1 done, 0 must wait (*wait), -1 failed (tls_error). */
int tls_handshake(struct tls *tls, uint32_t *wait);
bool tls_handshake_done(const struct tls *tls);
/* Sends close_notify, without waiting for the peer's. */
void tls_close_notify(struct tls *tls);

/* Why the last call failed, in words a person can act on. */
const char *tls_error(const struct tls *tls);
/* True when the failure was plain text arriving where TLS was expected. */
bool tls_error_was_plaintext(const struct tls *tls);
/* "TLSv1.3" and the like, once the handshake is done. */
const char *tls_version(const struct tls *tls);
/* With a CA: whether the chain and the host name checked out. */
bool tls_peer_verified(const struct tls *tls, char *error, size_t error_size);
/* The fingerprint of the peer's certificate key; false if it has none. */
bool tls_peer_fingerprint(const struct tls *tls, char *text, size_t size);

/* The fingerprint of the key in a PEM certificate file. */
bool tls_file_fingerprint(const char *certificate_file, char *text, size_t size, char *error,
			  size_t error_size);
/* Makes a new key and a self-signed certificate for name, valid ten years,
 * written only where no file exists yet (the key mode 0600). */
bool tls_make_self_signed(const char *certificate_file, const char *key_file, const char *name,
			  char *error, size_t error_size);

/* True when data, the first bytes of a connection, begin a TLS handshake
 * record: a TLS client reached a port that speaks plain text. */
static inline bool tls_looks_like_handshake(const unsigned char *data, size_t len)
{
	return len >= 3 && data[0] == 0x16 && data[1] == 0x03 && data[2] <= 0x04;
}

#endif
