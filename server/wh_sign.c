/*
 * wh_sign.c - webhook secrets and signatures (see wh_sign.h).
 */
#include "wh_sign.h"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define WH_KEY_BYTES 32
#define WH_PREFIX    "whsec_"

int wh_secret_new(char out[WH_SECRET_MAX])
{
    unsigned char key[WH_KEY_BYTES];
    if (getrandom(key, sizeof key, 0) != (ssize_t) sizeof key)
        return -1;
    memcpy(out, WH_PREFIX, sizeof WH_PREFIX - 1);
    EVP_EncodeBlock((unsigned char *) out + sizeof WH_PREFIX - 1, key, sizeof key);
    memset(key, 0, sizeof key);
    return 0;
}

#define WH_KEY_MAX 64

/* The secret's key bytes (ours are 32; the specification allows other
 * lengths, so 16 to 64 are read); returns their count or -1. */
static int secret_key(const char *secret, unsigned char key[WH_KEY_MAX + 3])
{
    if (strncmp(secret, WH_PREFIX, sizeof WH_PREFIX - 1) != 0)
        return -1;
    const char *b64 = secret + sizeof WH_PREFIX - 1;
    size_t n = strlen(b64);
    if (n < 24 || n > 88 || n % 4 != 0)
        return -1;
    int got = EVP_DecodeBlock(key, (const unsigned char *) b64, (int) n);
    if (got < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding's zero bytes too. */
    got -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
    return got >= 16 ? got : -1;
}

int wh_sign(const char *secret, const char *id, const char *timestamp, const char *body, size_t len,
            char out[WH_SIGNATURE_MAX])
{
    unsigned char key[WH_KEY_MAX + 3];
    int klen = secret_key(secret, key);
    if (klen < 0)
        return -1;
    /* EVP_MAC streams the three parts: the body is not copied. */
    EVP_MAC *mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac_alg ? EVP_MAC_CTX_new(mac_alg) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *) "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, (size_t) klen, params) &&
             EVP_MAC_update(ctx, (const unsigned char *) id, strlen(id)) &&
             EVP_MAC_update(ctx, (const unsigned char *) ".", 1) &&
             EVP_MAC_update(ctx, (const unsigned char *) timestamp, strlen(timestamp)) &&
             EVP_MAC_update(ctx, (const unsigned char *) ".", 1) &&
             EVP_MAC_update(ctx, (const unsigned char *) body, len) &&
             EVP_MAC_final(ctx, mac, &maclen, sizeof mac);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac_alg);
    memset(key, 0, sizeof key);
    if (!ok || maclen != 32)
        return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *) out + 3, mac, (int) maclen);
    return 0;
}
