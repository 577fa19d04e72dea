/*
 * tls.h - HTTPS/WSS on the public port: policy, checks, certificate reload.
 *
 * Owns: the TLS settings of the public vhost (TLS 1.2 and later, forward-
 * secret AEAD ciphers only, HTTP/1.1 by ALPN), the check that the
 * configured certificate and key are usable, and the SIGHUP reload that
 * swaps the certificate for new handshakes while open connections keep
 * the one they negotiated. lws owns the SSL_CTX; this module only tells it
 * what to load.
 */
#ifndef PT_TLS_H
#define PT_TLS_H

#include <libwebsockets.h>
#include <stddef.h>

struct server;

/*
 * Loads `cert` (a PEM chain) and `key` (PEM) into a scratch context and
 * checks that they belong together. Returns 0 with the key's type (an
 * EVP_PKEY id) in *key_type and a short description of the leaf ("subject
 * ..., serial ..., expires ...") in desc; or -1 with a one-line reason in
 * cause naming PAYTRACKR_TLS_CERT or PAYTRACKR_TLS_KEY. Reads files:
 * blocks briefly. Any thread.
 */
int tls_check_pair(const char *cert, const char *key, int *key_type, char *desc, size_t desc_len,
                   char *cause, size_t cause_len);

/* Sets the public vhost's TLS policy in `info` (certificate paths are the
 * caller's business). */
void tls_vhost_options(struct lws_context_creation_info *info);

/*
 * SIGHUP (service thread): re-reads PAYTRACKR_TLS_CERT and _KEY and, when
 * they are a usable pair of the same key type as before, makes new
 * handshakes use them. On any problem the current certificate stays and
 * the reason is logged. Returns 0 when reloaded (or TLS is off), -1 when
 * the old certificate was kept. Reads two small local files.
 */
int tls_reload(struct server *srv);

#endif
