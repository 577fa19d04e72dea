/*
 * tls.c - TLS policy, certificate checks and SIGHUP reload for the public
 * port.
 */
#include "tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

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

int tls_reload(struct server *srv)
{
    const struct config *cfg = &srv->cfg;
    if (!cfg->tls_cert) {
        log_msg(&srv->log, LOG_INFO, "SIGHUP: TLS is not configured, nothing to reload");
        return 0;
    }
    char cause[512], desc[400];
    int type = 0;
    if (tls_check_pair(cfg->tls_cert, cfg->tls_key, &type, desc, sizeof desc, cause, sizeof cause) <
        0) {
        log_msg(&srv->log, LOG_ERROR, "SIGHUP: keeping the current TLS certificate: %s", cause);
        return -1;
    }
    /* OpenSSL keeps one certificate per key type in a context: loading an
     * EC certificate beside an RSA one would leave both on offer. */
    int current = serving_key_type(srv->public_vhost);
    if (current && current != type) {
        log_msg(&srv->log, LOG_ERROR,
                "SIGHUP: keeping the current TLS certificate: the new key is of another type "
                "(%s, was %s); restart the server to switch key types",
                OBJ_nid2sn(type), OBJ_nid2sn(current));
        return -1;
    }
    /* Loads into the vhost's SSL_CTX. Each open connection's SSL object
     * holds its own reference to the certificate it negotiated with, so
     * only handshakes from now on see the new one. */
    lws_tls_cert_updated(srv->context, cfg->tls_cert, cfg->tls_key, NULL, 0, NULL, 0);
    log_msg(&srv->log, LOG_INFO, "SIGHUP: TLS certificate reloaded: %s", desc);
    return 0;
}
