/*-------------------------------------------------------------------------
 * crypto.c
 *		AEAD seal/open and HMAC/HKDF wrappers over OpenSSL EVP, nothing else.
 *		No server calls: errors are reported by return value and the
 *		callers turn them into ereport()s.
 *-------------------------------------------------------------------------
 */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#endif

struct CvAead
{
	EVP_CIPHER_CTX *enc;		/* key schedule set once, nonce per value */
	EVP_CIPHER_CTX *dec;
};

/* set up encryption and decryption contexts holding the key schedule */
CvAead *
cv_aead_new(const uint8_t key[CV_KEY_LEN])
{
	CvAead	   *a = calloc(1, sizeof(CvAead));

	if (a == NULL)
		return NULL;
	a->enc = EVP_CIPHER_CTX_new();
	a->dec = EVP_CIPHER_CTX_new();
	if (a->enc == NULL || a->dec == NULL ||
		EVP_EncryptInit_ex(a->enc, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
		EVP_EncryptInit_ex(a->enc, NULL, NULL, key, NULL) != 1 ||
		EVP_DecryptInit_ex(a->dec, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
		EVP_DecryptInit_ex(a->dec, NULL, NULL, key, NULL) != 1)
	{
		cv_aead_free(a);
		return NULL;
	}
	return a;
}

/* free the contexts; OpenSSL cleanses the key schedule */
void
cv_aead_free(CvAead *a)
{
	if (a == NULL)
		return;
	if (a->enc)
		EVP_CIPHER_CTX_free(a->enc);
	if (a->dec)
		EVP_CIPHER_CTX_free(a->dec);
	free(a);
}

/*
 * Associated data of up to this many bytes (an envelope header and a row
 * context, usually) goes to the cipher in one piece: a second update call
 * starts inside a partial block of GCM's hash and costs more than the copy.
 */
#define CV_AAD_JOIN_MAX		512

/* feed the two parts of the associated data to ctx (encrypting or decrypting) */
static bool
cv_aead_aad(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t *aad1, size_t aad1_len,
			const uint8_t *aad2, size_t aad2_len)
{
	uint8_t		joined[CV_AAD_JOIN_MAX];
	int			outl;

	if (aad1_len > 0 && aad2_len > 0 && aad1_len + aad2_len <= sizeof(joined))
	{
		/* one update; the GCM hash of the stream is the same */
		memcpy(joined, aad1, aad1_len);
		memcpy(joined + aad1_len, aad2, aad2_len);
		aad1 = joined;
		aad1_len += aad2_len;
		aad2_len = 0;
	}
	if (enc)
		return (aad1_len == 0 || EVP_EncryptUpdate(ctx, NULL, &outl, aad1, (int) aad1_len) == 1) &&
			(aad2_len == 0 || EVP_EncryptUpdate(ctx, NULL, &outl, aad2, (int) aad2_len) == 1);
	return (aad1_len == 0 || EVP_DecryptUpdate(ctx, NULL, &outl, aad1, (int) aad1_len) == 1) &&
		(aad2_len == 0 || EVP_DecryptUpdate(ctx, NULL, &outl, aad2, (int) aad2_len) == 1);
}

/* AES-256-GCM encrypt pt with the given 12-byte nonce and two AAD parts */
bool
cv_aead_seal(CvAead *a, const uint8_t *nonce,
			 const uint8_t *aad1, size_t aad1_len,
			 const uint8_t *aad2, size_t aad2_len,
			 const uint8_t *pt, size_t pt_len,
			 uint8_t *ct, uint8_t *tag)
{
	int			outl;

	if (EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) != 1)
		return false;
	if (!cv_aead_aad(a->enc, true, aad1, aad1_len, aad2, aad2_len))
		return false;
	if (pt_len > 0 && EVP_EncryptUpdate(a->enc, ct, &outl, pt, (int) pt_len) != 1)
		return false;
	if (EVP_EncryptFinal_ex(a->enc, ct + pt_len, &outl) != 1)
		return false;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	{
		/* what EVP_CTRL_GCM_GET_TAG does in OpenSSL 3, without its detour */
		OSSL_PARAM	p[2];

		p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, 16);
		p[1] = OSSL_PARAM_construct_end();
		if (EVP_CIPHER_CTX_get_params(a->enc, p) != 1)
			return false;
	}
#else
	if (EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
		return false;
#endif
	return true;
}

/* AES-256-GCM decrypt and verify; the plaintext is wiped if the tag fails */
int
cv_aead_open(CvAead *a, const uint8_t *nonce,
			 const uint8_t *aad1, size_t aad1_len,
			 const uint8_t *aad2, size_t aad2_len,
			 const uint8_t *ct, size_t ct_len,
			 const uint8_t *tag, uint8_t *pt)
{
	int			outl;

	if (EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) != 1)
		return -1;
	if (!cv_aead_aad(a->dec, false, aad1, aad1_len, aad2, aad2_len))
		return -1;
	if (ct_len > 0 && EVP_DecryptUpdate(a->dec, pt, &outl, ct, (int) ct_len) != 1)
		return -1;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	{
		/* what EVP_CTRL_GCM_SET_TAG does in OpenSSL 3, without its detour */
		OSSL_PARAM	p[2];

		p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *) tag, 16);
		p[1] = OSSL_PARAM_construct_end();
		if (EVP_CIPHER_CTX_set_params(a->dec, p) != 1)
			return -1;
	}
#else
	if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_GCM_SET_TAG, 16, (void *) tag) != 1)
		return -1;
#endif
	if (EVP_DecryptFinal_ex(a->dec, pt + ct_len, &outl) != 1)
	{
		if (ct_len > 0)
			OPENSSL_cleanse(pt, ct_len);
		return 0;
	}
	return 1;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* OpenSSL 3: an EVP_MAC context keyed once; each message re-initialises it */
struct CvMac
{
	EVP_MAC	   *mac;
	EVP_MAC_CTX *ctx;
};

/* set up HMAC-SHA-256 under key */
CvMac *
cv_mac_new(const uint8_t *key, size_t key_len)
{
	CvMac	   *m = calloc(1, sizeof(CvMac));
	OSSL_PARAM	params[2];

	if (m == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (m->mac == NULL || (m->ctx = EVP_MAC_CTX_new(m->mac)) == NULL ||
		EVP_MAC_init(m->ctx, key, key_len, params) != 1)
	{
		cv_mac_free(m);
		return NULL;
	}
	return m;
}

/* HMAC-SHA-256 of msg under the key set up in cv_mac_new */
bool
cv_mac_compute(CvMac *m, const uint8_t *msg, size_t len, uint8_t out[CV_MAC_LEN])
{
	size_t		outl = 0;

	return EVP_MAC_init(m->ctx, NULL, 0, NULL) == 1 &&
		EVP_MAC_update(m->ctx, msg, len) == 1 &&
		EVP_MAC_final(m->ctx, out, &outl, CV_MAC_LEN) == 1 && outl == CV_MAC_LEN;
}

/* free the context; OpenSSL cleanses the key */
void
cv_mac_free(CvMac *m)
{
	if (m == NULL)
		return;
	if (m->ctx)
		EVP_MAC_CTX_free(m->ctx);
	if (m->mac)
		EVP_MAC_free(m->mac);
	free(m);
}
#else
/* OpenSSL 1.1: keep the key and use the one-shot HMAC() */
struct CvMac
{
	uint8_t		key[CV_KEY_LEN];
	size_t		key_len;
};

/* set up HMAC-SHA-256 under key */
CvMac *
cv_mac_new(const uint8_t *key, size_t key_len)
{
	CvMac	   *m;

	if (key_len > CV_KEY_LEN || (m = calloc(1, sizeof(CvMac))) == NULL)
		return NULL;
	memcpy(m->key, key, key_len);
	m->key_len = key_len;
	return m;
}

/* HMAC-SHA-256 of msg under the key set up in cv_mac_new */
bool
cv_mac_compute(CvMac *m, const uint8_t *msg, size_t len, uint8_t out[CV_MAC_LEN])
{
	return cv_hmac_sha256(m->key, m->key_len, msg, len, out);
}

/* wipe and free */
void
cv_mac_free(CvMac *m)
{
	if (m == NULL)
		return;
	OPENSSL_cleanse(m->key, sizeof(m->key));
	free(m);
}
#endif

/* cryptographically strong random bytes from OpenSSL's DRBG */
bool
cv_random_bytes(uint8_t *buf, size_t len)
{
	return RAND_bytes(buf, (int) len) == 1;
}

/* HMAC-SHA-256 */
bool
cv_hmac_sha256(const uint8_t *key, size_t key_len,
			   const uint8_t *msg, size_t msg_len, uint8_t out[CV_MAC_LEN])
{
	unsigned int outl = 0;

	return HMAC(EVP_sha256(), key, (int) key_len, msg, msg_len, out, &outl) != NULL &&
		outl == CV_MAC_LEN;
}

/* HKDF-SHA-256 (RFC 5869) with an empty salt and the given info label */
bool
cv_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const char *info,
			   uint8_t *out, size_t out_len)
{
	return cv_hkdf_sha256_ex(NULL, 0, ikm, ikm_len, (const uint8_t *) info, strlen(info),
							 out, out_len);
}

/* HKDF-SHA-256 (RFC 5869), extract and expand; salt_len 0 = no salt */
bool
cv_hkdf_sha256_ex(const uint8_t *salt, size_t salt_len,
				  const uint8_t *ikm, size_t ikm_len,
				  const uint8_t *info, size_t info_len,
				  uint8_t *out, size_t out_len)
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t		len = out_len;
	bool		ok;

	if (pctx == NULL)
		return false;
	ok = EVP_PKEY_derive_init(pctx) == 1 &&
		EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) == 1 &&
		(salt_len == 0 || EVP_PKEY_CTX_set1_hkdf_salt(pctx, salt, (int) salt_len) == 1) &&
		EVP_PKEY_CTX_set1_hkdf_key(pctx, ikm, (int) ikm_len) == 1 &&
		(info_len == 0 || EVP_PKEY_CTX_add1_hkdf_info(pctx, info, (int) info_len) == 1) &&
		EVP_PKEY_derive(pctx, out, &len) == 1 && len == out_len;
	EVP_PKEY_CTX_free(pctx);
	return ok;
}

/* SHA-256 */
bool
cv_sha256(const uint8_t *msg, size_t len, uint8_t out[32])
{
	unsigned int outl = 0;

	return EVP_Digest(msg, len, out, &outl, EVP_sha256(), NULL) == 1 && outl == 32;
}

/* zero a buffer in a way the compiler cannot drop */
void
cv_wipe(void *buf, size_t len)
{
	if (buf != NULL && len > 0)
		OPENSSL_cleanse(buf, len);
}

/*
 * Each primitive once, on constant public inputs (a zero key, a zero nonce),
 * so that OpenSSL's one-time set-up is done: its configuration file read,
 * its providers loaded, the algorithms fetched.  Called in the postmaster
 * when the library is preloaded, every backend then starts with it done
 * instead of paying it (about half a millisecond) at its first use of a key.
 * Failures are ignored: the real calls report them.  No random bytes (the
 * generator is seeded in each backend).
 */
void
cv_crypto_warm_up(void)
{
	static const uint8_t zero[CV_KEY_LEN];
	uint8_t		out[CV_KEY_LEN];
	uint8_t		tag[16];
	CvAead	   *a;
	CvMac	   *m;

	(void) cv_sha256(zero, sizeof(zero), out);
	(void) cv_hmac_sha256(zero, sizeof(zero), zero, sizeof(zero), out);
	(void) cv_hkdf_sha256(zero, sizeof(zero), "customer_vault warm-up", out, sizeof(out));
	if ((m = cv_mac_new(zero, sizeof(zero))) != NULL)
	{
		(void) cv_mac_compute(m, zero, sizeof(zero), out);
		cv_mac_free(m);
	}
	if ((a = cv_aead_new(zero)) != NULL)
	{
		(void) cv_aead_seal(a, zero, zero, 4, NULL, 0, zero, sizeof(zero), out, tag);
		(void) cv_aead_open(a, zero, zero, 4, NULL, 0, out, sizeof(out), tag, out);
		cv_aead_free(a);
	}
}
