/*-------------------------------------------------------------------------
 * crypto.h
 *		Thin wrappers over OpenSSL EVP: AES-256-GCM seal/open, random bytes,
 *		HMAC-SHA-256, HKDF-SHA-256, SHA-256.  Nothing here is home-made.
 *-------------------------------------------------------------------------
 */
#ifndef CV_CRYPTO_H
#define CV_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_KEY_LEN		32
#define CV_MAC_LEN		32

/* an AES-256-GCM key with its expanded schedule, reusable for many values */
typedef struct CvAead CvAead;

extern CvAead *cv_aead_new(const uint8_t key[CV_KEY_LEN]);
extern void cv_aead_free(CvAead *aead);
extern CvAead *cv_aead_new_path(const uint8_t key[CV_KEY_LEN], bool direct);
extern const char *cv_aead_path(void);

/* returns false only on a library failure */
extern bool cv_aead_seal(CvAead *aead, const uint8_t *nonce,
						 const uint8_t *aad1, size_t aad1_len,
						 const uint8_t *aad2, size_t aad2_len,
						 const uint8_t *pt, size_t pt_len,
						 uint8_t *ct, uint8_t *tag);

/* 1 = authentic, 0 = authentication failed, -1 = library failure */
extern int	cv_aead_open(CvAead *aead, const uint8_t *nonce,
						 const uint8_t *aad1, size_t aad1_len,
						 const uint8_t *aad2, size_t aad2_len,
						 const uint8_t *ct, size_t ct_len,
						 const uint8_t *tag, uint8_t *pt);

/* an HMAC-SHA-256 key set up once, reusable for many messages */
typedef struct CvMac CvMac;

extern CvMac *cv_mac_new(const uint8_t *key, size_t key_len);
extern bool cv_mac_compute(CvMac *mac, const uint8_t *msg, size_t len, uint8_t out[CV_MAC_LEN]);
extern void cv_mac_free(CvMac *mac);

extern bool cv_random_bytes(uint8_t *buf, size_t len);
extern bool cv_hmac_sha256(const uint8_t *key, size_t key_len,
						   const uint8_t *msg, size_t msg_len, uint8_t out[CV_MAC_LEN]);
extern bool cv_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
						   const char *info, uint8_t *out, size_t out_len);
extern bool cv_hkdf_sha256_ex(const uint8_t *salt, size_t salt_len,
							  const uint8_t *ikm, size_t ikm_len,
							  const uint8_t *info, size_t info_len,
							  uint8_t *out, size_t out_len);
extern bool cv_sha256(const uint8_t *msg, size_t len, uint8_t out[32]);
extern void cv_wipe(void *buf, size_t len);
extern void cv_crypto_warm_up(void);

#endif							/* CV_CRYPTO_H */
