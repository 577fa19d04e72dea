/*
 * tls.h - HTTPS/WSS on the public port: policy, checks, certificate reload.
 *
 * Owns: the TLS settings of the public vhost (TLS 1.2 and later, forward-
 * secret AEAD ciphers only, HTTP/1.1 by ALPN), the check that the
 * configured certificate and key are usable, and the reload that swaps the
 * certificate for new handshakes while open connections keep the one they
 * negotiated: on SIGHUP, and when a timer in the service loop sees the
 * files change (a renewed certificate mounted from Key Vault or a Secret).
 * lws owns the SSL_CTX; this module only tells it what to load.
 */
#ifndef PT_TLS_H
#define PT_TLS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct server;

/* What stat() says about one certificate file, following symlinks: a
 * mounted Secret or Key Vault volume is renewed by swapping a symlink to a
 * new directory, which changes the inode; an in-place rewrite changes the
 * size or the times (ctime cannot be set back). */
struct tls_file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    int err; /* errno of a failed stat, else 0 */
};

/* The certificate-file watch: one per server, in struct server, touched
 * only on the service thread. */
struct tls_watch {
    lws_sorted_usec_list_t sul;
    struct tls_file_sig sig[2]; /* cert, key as last looked at */
    unsigned char digest[32];   /* SHA-256 of both files as last loaded or tried */
    bool have_digest;
    bool running;
};

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
 * Service thread: re-reads PAYTRACKR_TLS_CERT and _KEY and, when they are a
 * usable pair of the same key type as before, makes new handshakes use
 * them. On any problem the current certificate stays and the reason is
 * logged, prefixed by `trigger` ("SIGHUP"). Returns 0 when reloaded (or TLS
 * is off), -1 when the old certificate was kept. Reads two small local
 * files.
 */
int tls_reload(struct server *srv, const char *trigger);

/*
 * Starts the watch (service thread, once the context exists): every
 * PAYTRACKR_TLS_RELOAD_SECONDS it stats both files and, when either
 * changed and their content differs from what was last loaded, reloads as
 * tls_reload does. A pair that fails to load is not retried until the
 * files change again. Does nothing when TLS is off or the period is 0.
 */
void tls_watch_start(struct server *srv);

/* Cancels the watch's timer; safe when it never started. */
void tls_watch_stop(struct server *srv);

#endif
