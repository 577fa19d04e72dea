/*
 * tls.c - TLS policy, certificate checks and certificate reload (SIGHUP
 * and a file watch) for the public port.
 */
#include "tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "server.h"

/* TLS 1.2: ECDHE key exchange with AEAD ciphers only, so every session is
 * forward secret and nothing CBC- or SHA-1-based is offered. */
#define TLS12_CIPHERS                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_CIPHERS "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

void tls_vhost_options(struct lws_context_creation_info *info)
{
    info->ssl_cipher_list = TLS12_CIPHERS;
    info->tls1_3_plus_cipher_list = TLS13_CIPHERS;
    /* lws already refuses SSLv2/3. TLS 1.0 and 1.1 go too; renegotiation
     * (a cheap way to make the server do expensive handshakes) and
     * compression (CRIME) are off. */
    info->ssl_options_set = (long) (SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_NO_COMPRESSION);
    /* Only HTTP/1.1 is offered: the request code reads HTTP/1 header
     * tokens, and WebSockets here are HTTP/1.1 upgrades. */
    info->alpn = "http/1.1";
}

/* The first queued OpenSSL error as text, or a fallback. */
static void openssl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "unknown error");
    ERR_clear_error();
}

/* Never prompt on a terminal for a passphrase: an encrypted key is an
 * unusable setting, not an interactive question. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return 0;
}

/* "subject CN=..., serial 0x..., expires ..." for the log. */
static void describe_cert(X509 *x, char *out, size_t cap)
{
    char subject[256] = "?", serial[80] = "?", expires[64] = "?";
    BIO *b = BIO_new(BIO_s_mem());
    if (b) {
        if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
            int n = BIO_read(b, subject, (int) sizeof subject - 1);
            subject[n > 0 ? n : 0] = '\0';
        }
        (void) BIO_reset(b);
        if (ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
            int n = BIO_read(b, expires, (int) sizeof expires - 1);
            expires[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
    }
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex)
        snprintf(serial, sizeof serial, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    snprintf(out, cap, "subject %s, serial 0x%s, expires %s", subject, serial, expires);
}

int tls_check_pair(const char *cert, const char *key, int *key_type, char *desc, size_t desc_len,
                   char *cause, size_t cause_len)
{
    char why[200];
    int rc = -1;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(cause, cause_len, "PAYTRACKR_TLS_CERT: cannot create a TLS context");
        return -1;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        openssl_reason(why, sizeof why);
        snprintf(cause, cause_len, "PAYTRACKR_TLS_CERT: %s is not a usable PEM certificate: %s",
                 cert, why);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(why, sizeof why);
        snprintf(cause, cause_len,
                 "PAYTRACKR_TLS_KEY: %s is not an unencrypted PEM private key for the "
                 "certificate: %s",
                 key, why);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_reason(why, sizeof why);
        snprintf(cause, cause_len, "PAYTRACKR_TLS_KEY: %s does not match PAYTRACKR_TLS_CERT: %s",
                 key, why);
    } else {
        *key_type = EVP_PKEY_get_base_id(SSL_CTX_get0_privatekey(ctx));
        describe_cert(SSL_CTX_get0_certificate(ctx), desc, desc_len);
        rc = 0;
    }
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* The key type of the certificate the vhost serves now, or 0 if unknown. */
static int serving_key_type(struct lws_vhost *vh)
{
    /* lws writes the DER public key past the union's nominal name[]: give
     * it room right behind it. */
    union {
        union lws_tls_cert_info_results r;
        unsigned char bytes[sizeof(union lws_tls_cert_info_results) + 4096];
    } buf;
    size_t len = sizeof buf.bytes - offsetof(union lws_tls_cert_info_results, ns.name);
    if (lws_tls_vhost_cert_info(vh, LWS_TLS_CERT_INFO_OPAQUE_PUBLIC_KEY, &buf.r, len) < 0 ||
        buf.r.ns.len <= 0)
        return 0;
    const unsigned char *p = (const unsigned char *) buf.r.ns.name;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, buf.r.ns.len);
    int type = pk ? EVP_PKEY_get_base_id(pk) : 0;
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return type;
}

/* Certificate chains and keys are a few KiB; anything past this is not
 * hashed (the size is, through the stat signature). */
#define TLS_HASH_MAX_BYTES (1024 * 1024)

static void file_sig(const char *path, struct tls_file_sig *sig)
{
    struct stat st;
    memset(sig, 0, sizeof *sig);
    if (stat(path, &st) != 0) {
        sig->err = errno ? errno : EIO;
        return;
    }
    sig->dev = st.st_dev;
    sig->ino = st.st_ino;
    sig->size = st.st_size;
    sig->mtime = st.st_mtim;
    sig->ctime = st.st_ctim;
}

static bool sig_equal(const struct tls_file_sig *a, const struct tls_file_sig *b)
{
    return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* SHA-256 over the certificate file, then the key file (each up to
 * TLS_HASH_MAX_BYTES). Returns 0, or -1 when a file cannot be read. */
static int pair_digest(const char *cert, const char *key, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return -1;
    }
    int rc = 0;
    const char *paths[2] = {cert, key};
    for (int i = 0; i < 2 && rc == 0; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            rc = -1;
            break;
        }
        unsigned char buf[4096];
        size_t n, total = 0;
        while (total < TLS_HASH_MAX_BYTES && (n = fread(buf, 1, sizeof buf, f)) > 0) {
            EVP_DigestUpdate(md, buf, n);
            total += n;
        }
        if (ferror(f))
            rc = -1;
        fclose(f);
        /* A boundary between the files, so moving bytes from one to the
         * other changes the digest. */
        EVP_DigestUpdate(md, "\n--\n", 4);
    }
    unsigned int len = 0;
    if (rc == 0 && EVP_DigestFinal_ex(md, out, &len) != 1)
        rc = -1;
    EVP_MD_CTX_free(md);
    return rc;
}

/* Remembers the files as they are now, so the watch does not load the same
 * pair again. */
static void watch_remember(struct server *srv)
{
    struct tls_watch *w = &srv->tls_watch;
    file_sig(srv->cfg.tls_cert, &w->sig[0]);
    file_sig(srv->cfg.tls_key, &w->sig[1]);
    w->have_digest = pair_digest(srv->cfg.tls_cert, srv->cfg.tls_key, w->digest) == 0;
}

int tls_reload(struct server *srv, const char *trigger)
{
    const struct config *cfg = &srv->cfg;
    if (!cfg->tls_cert) {
        log_msg(&srv->log, LOG_INFO, "%s: TLS is not configured, nothing to reload", trigger);
        return 0;
    }
    char cause[512], desc[400];
    int type = 0;
    if (tls_check_pair(cfg->tls_cert, cfg->tls_key, &type, desc, sizeof desc, cause, sizeof cause) <
        0) {
        log_msg(&srv->log, LOG_ERROR, "%s: keeping the current TLS certificate: %s", trigger,
                cause);
        return -1;
    }
    /* OpenSSL keeps one certificate per key type in a context: loading an
     * EC certificate beside an RSA one would leave both on offer. */
    int current = serving_key_type(srv->public_vhost);
    if (current && current != type) {
        log_msg(&srv->log, LOG_ERROR,
                "%s: keeping the current TLS certificate: the new key is of another type "
                "(%s, was %s); restart the server to switch key types",
                trigger, OBJ_nid2sn(type), OBJ_nid2sn(current));
        return -1;
    }
    /* Loads into the vhost's SSL_CTX. Each open connection's SSL object
     * holds its own reference to the certificate it negotiated with, so
     * only handshakes from now on see the new one. */
    lws_tls_cert_updated(srv->context, cfg->tls_cert, cfg->tls_key, NULL, 0, NULL, 0);
    if (srv->tls_watch.running)
        watch_remember(srv);
    log_msg(&srv->log, LOG_INFO, "%s: TLS certificate reloaded: %s", trigger, desc);
    return 0;
}

static void watch_tick(lws_sorted_usec_list_t *sul)
{
    struct tls_watch *w = lws_container_of(sul, struct tls_watch, sul);
    struct server *srv = lws_container_of(w, struct server, tls_watch);
    struct tls_file_sig now[2];
    file_sig(srv->cfg.tls_cert, &now[0]);
    file_sig(srv->cfg.tls_key, &now[1]);
    if (!sig_equal(&now[0], &w->sig[0]) || !sig_equal(&now[1], &w->sig[1])) {
        w->sig[0] = now[0];
        w->sig[1] = now[1];
        unsigned char digest[32];
        /* Unreadable (mid-swap, or gone): look again next time; the
         * signature saved above changes once the files are back. */
        if (now[0].err == 0 && now[1].err == 0 &&
            pair_digest(srv->cfg.tls_cert, srv->cfg.tls_key, digest) == 0) {
            if (!w->have_digest || memcmp(digest, w->digest, sizeof digest) != 0) {
                /* Remembered whatever the outcome: a pair that fails (a
                 * certificate renewed before its key) is tried again when
                 * the files change, not every tick. */
                memcpy(w->digest, digest, sizeof digest);
                w->have_digest = true;
                tls_reload(srv, "certificate files changed");
            }
        } else {
            memset(&w->sig, 0, sizeof w->sig);
        }
    }
    lws_sul_schedule(srv->context, 0, &w->sul, watch_tick,
                     (lws_usec_t) srv->cfg.tls_reload_seconds * LWS_US_PER_SEC);
}

void tls_watch_start(struct server *srv)
{
    struct tls_watch *w = &srv->tls_watch;
    if (!srv->cfg.tls_cert || srv->cfg.tls_reload_seconds <= 0 || w->running)
        return;
    w->running = true;
    watch_remember(srv);
    lws_sul_schedule(srv->context, 0, &w->sul, watch_tick,
                     (lws_usec_t) srv->cfg.tls_reload_seconds * LWS_US_PER_SEC);
}

void tls_watch_stop(struct server *srv)
{
    if (!srv->tls_watch.running)
        return;
    lws_sul_cancel(&srv->tls_watch.sul);
    srv->tls_watch.running = false;
}
