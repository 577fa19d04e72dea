/*
 * wh_sign.h - webhook secrets and Standard Webhooks signatures.
 *
 * Owns: making a secret ("whsec_" + base64 of 32 random bytes), reading
 * its key back, and the "v1,<base64 HMAC-SHA256>" signature of
 * "<webhook-id>.<webhook-timestamp>.<body>" (OpenSSL HMAC). Pure
 * functions, any thread.
 */
#ifndef PT_WH_SIGN_H
#define PT_WH_SIGN_H

#include <stddef.h>

/* "whsec_" + 44 base64 characters + NUL, with room to spare. */
#define WH_SECRET_MAX 64
/* "v1," + 44 base64 characters + NUL. */
#define WH_SIGNATURE_MAX 52

/* Writes a fresh secret. Returns 0, or -1 when the system has no
 * randomness to give. */
int wh_secret_new(char out[WH_SECRET_MAX]);

/* Signs `len` bytes of `body` for message `id` at `timestamp` (decimal
 * Unix seconds) with `secret` ("whsec_..."). Returns 0 with `out` set to
 * "v1,<base64>", or -1 when the secret is not one of ours. */
int wh_sign(const char *secret, const char *id, const char *timestamp, const char *body, size_t len,
            char out[WH_SIGNATURE_MAX]);

#endif
