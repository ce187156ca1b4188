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
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#endif

struct CvAead
{
	EVP_CIPHER_CTX *enc;		/* key schedule set once, nonce per value */
	EVP_CIPHER_CTX *dec;
	void	   *penc;			/* or the provider's own contexts (OpenSSL 3) */
	void	   *pdec;
};

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/*
 * OpenSSL 3 hands every EVP cipher call to a provider, and EVP adds a cost
 * per call that does not depend on the data: EVP_EncryptInit_ex() with a
 * nonce asks the provider for the IV length by name, a parameter lookup of
 * eight string compares, for every value.  At a few hundred nanoseconds
 * a value in all, that was a fifth of a protected column's INSERT overhead.
 *
 * So a value is sealed and opened by calling the AES-256-GCM implementation
 * of the provider EVP_CIPHER_fetch() selects through that provider's
 * dispatch table (provider-cipher(7)), with the arguments EVP itself passes
 * it: the same code encrypts, hashes and checks the tag (nothing of the
 * cipher is ours), without EVP's per-call lookups.  The table is resolved
 * once per process; the fetched cipher is kept, so the provider stays
 * loaded.  Before first use the direct calls must give, on test vectors of
 * several lengths, the bytes the EVP path gives and refuse a wrong tag;
 * anything missing or different keeps the EVP path for the process.
 */
typedef struct CvGcmProv
{
	EVP_CIPHER *cipher;			/* held for good: keeps the provider loaded */
	void	   *provctx;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *einit;
	OSSL_FUNC_cipher_decrypt_init_fn *dinit;
	OSSL_FUNC_cipher_update_fn *update;
	OSSL_FUNC_cipher_final_fn *final;
	OSSL_FUNC_cipher_get_ctx_params_fn *get_ctx_params;
	OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params;
} CvGcmProv;

static CvGcmProv cv_gcm;
static int	cv_gcm_state = 0;	/* 0 not resolved yet, 1 direct, -1 EVP */

static void cv_gcm_resolve(void);
#endif

/* set up encryption and decryption contexts holding the key schedule */
CvAead *
cv_aead_new(const uint8_t key[CV_KEY_LEN])
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (cv_gcm_state == 0)
		cv_gcm_resolve();
	return cv_aead_new_path(key, cv_gcm_state > 0);
#else
	return cv_aead_new_path(key, false);
#endif
}

/* which AES-256-GCM path new keys use: "provider" (direct) or "evp" */
const char *
cv_aead_path(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (cv_gcm_state == 0)
		cv_gcm_resolve();
	return cv_gcm_state > 0 ? "provider" : "evp";
#else
	return "evp";
#endif
}

/*
 * The contexts of a key on a given path: direct (NULL when the direct path
 * is not in use in this process) or through EVP.  cv_aead_new() picks; the
 * unit tests run both.
 */
CvAead *
cv_aead_new_path(const uint8_t key[CV_KEY_LEN], bool direct)
{
	CvAead	   *a;

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	/* while resolving (state -1) the self-test needs the table it is checking */
	if (direct && cv_gcm.newctx == NULL)
		return NULL;
#else
	if (direct)
		return NULL;
#endif
	a = calloc(1, sizeof(CvAead));
	if (a == NULL)
		return NULL;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (direct)
	{
		a->penc = cv_gcm.newctx(cv_gcm.provctx);
		a->pdec = cv_gcm.newctx(cv_gcm.provctx);
		if (a->penc == NULL || a->pdec == NULL ||
			cv_gcm.einit(a->penc, key, CV_KEY_LEN, NULL, 0, NULL) != 1 ||
			cv_gcm.dinit(a->pdec, key, CV_KEY_LEN, NULL, 0, NULL) != 1)
		{
			cv_aead_free(a);
			return NULL;
		}
		return a;
	}
#endif
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
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	/* the provider's freectx cleanses its context, key schedule included */
	if (a->penc)
		cv_gcm.freectx(a->penc);
	if (a->pdec)
		cv_gcm.freectx(a->pdec);
#endif
	free(a);
}

/*
 * Associated data of up to this many bytes (an envelope header and a row
 * context, usually) goes to the cipher in one piece: a second update call
 * starts inside a partial block of GCM's hash and costs more than the copy.
 */
#define CV_AAD_JOIN_MAX		512

/* one part of the associated data, to a provider context (direct) or through EVP */
static bool
cv_aead_aad_part(EVP_CIPHER_CTX *ctx, void *pctx, bool enc, const uint8_t *aad, size_t len)
{
	int			outl;

	if (len == 0)
		return true;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (pctx != NULL)
	{
		size_t		poutl;

		/* no output buffer: the input is associated data (outsize as EVP passes) */
		return cv_gcm.update(pctx, NULL, &poutl, len, aad, len) == 1;
	}
#endif
	if (enc)
		return EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int) len) == 1;
	return EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int) len) == 1;
}

/*
 * Feed the two parts of the associated data to a context: an EVP one (ctx,
 * encrypting or decrypting) or a provider one (pctx).
 */
static bool
cv_aead_aad(EVP_CIPHER_CTX *ctx, void *pctx, bool enc, const uint8_t *aad1, size_t aad1_len,
			const uint8_t *aad2, size_t aad2_len)
{
	uint8_t		joined[CV_AAD_JOIN_MAX];

	if (aad1_len > 0 && aad2_len > 0 && aad1_len + aad2_len <= sizeof(joined))
	{
		/* one update; the GCM hash of the stream is the same */
		memcpy(joined, aad1, aad1_len);
		memcpy(joined + aad1_len, aad2, aad2_len);
		aad1 = joined;
		aad1_len += aad2_len;
		aad2_len = 0;
	}
	return cv_aead_aad_part(ctx, pctx, enc, aad1, aad1_len) &&
		cv_aead_aad_part(ctx, pctx, enc, aad2, aad2_len);
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* cv_aead_seal() on the direct path: the calls EVP would make, in its order */
static bool
cv_gcm_seal(CvAead *a, const uint8_t *nonce,
			const uint8_t *aad1, size_t aad1_len,
			const uint8_t *aad2, size_t aad2_len,
			const uint8_t *pt, size_t pt_len,
			uint8_t *ct, uint8_t *tag)
{
	OSSL_PARAM	p[2];
	size_t		outl;

	/* the nonce, its length given (what EVP asks the provider by name) */
	if (cv_gcm.einit(a->penc, NULL, 0, nonce, 12, NULL) != 1)
		return false;
	if (!cv_aead_aad(NULL, a->penc, true, aad1, aad1_len, aad2, aad2_len))
		return false;
	if (pt_len > 0 && (cv_gcm.update(a->penc, ct, &outl, pt_len, pt, pt_len) != 1 || outl != pt_len))
		return false;
	if (cv_gcm.final(a->penc, ct + pt_len, &outl, 0) != 1 || outl != 0)
		return false;
	p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, 16);
	p[1] = OSSL_PARAM_construct_end();
	return cv_gcm.get_ctx_params(a->penc, p) == 1 && p[0].return_size == 16;
}

/* cv_aead_open() on the direct path */
static int
cv_gcm_open(CvAead *a, const uint8_t *nonce,
			const uint8_t *aad1, size_t aad1_len,
			const uint8_t *aad2, size_t aad2_len,
			const uint8_t *ct, size_t ct_len,
			const uint8_t *tag, uint8_t *pt)
{
	OSSL_PARAM	p[2];
	size_t		outl;

	if (cv_gcm.dinit(a->pdec, NULL, 0, nonce, 12, NULL) != 1)
		return -1;
	if (!cv_aead_aad(NULL, a->pdec, false, aad1, aad1_len, aad2, aad2_len))
		return -1;
	if (ct_len > 0 && (cv_gcm.update(a->pdec, pt, &outl, ct_len, ct, ct_len) != 1 || outl != ct_len))
	{
		OPENSSL_cleanse(pt, ct_len);
		return -1;
	}
	p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *) tag, 16);
	p[1] = OSSL_PARAM_construct_end();
	if (cv_gcm.set_ctx_params(a->pdec, p) != 1)
	{
		if (ct_len > 0)
			OPENSSL_cleanse(pt, ct_len);
		return -1;
	}
	if (cv_gcm.final(a->pdec, pt + ct_len, &outl, 0) != 1)
	{
		/* not authentic: nothing of the plaintext is left */
		if (ct_len > 0)
			OPENSSL_cleanse(pt, ct_len);
		return 0;
	}
	return 1;
}
#endif

/* AES-256-GCM encrypt pt with the given 12-byte nonce and two AAD parts */
bool
cv_aead_seal(CvAead *a, const uint8_t *nonce,
			 const uint8_t *aad1, size_t aad1_len,
			 const uint8_t *aad2, size_t aad2_len,
			 const uint8_t *pt, size_t pt_len,
			 uint8_t *ct, uint8_t *tag)
{
	int			outl;

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (a->penc != NULL)
		return cv_gcm_seal(a, nonce, aad1, aad1_len, aad2, aad2_len, pt, pt_len, ct, tag);
#endif
	if (EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) != 1)
		return false;
	if (!cv_aead_aad(a->enc, NULL, true, aad1, aad1_len, aad2, aad2_len))
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

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	if (a->pdec != NULL)
		return cv_gcm_open(a, nonce, aad1, aad1_len, aad2, aad2_len, ct, ct_len, tag, pt);
#endif
	if (EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) != 1)
		return -1;
	if (!cv_aead_aad(a->dec, NULL, false, aad1, aad1_len, aad2, aad2_len))
		return -1;
	if (ct_len > 0 && EVP_DecryptUpdate(a->dec, pt, &outl, ct, (int) ct_len) != 1)
	{
		OPENSSL_cleanse(pt, ct_len);
		return -1;
	}
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	{
		/* what EVP_CTRL_GCM_SET_TAG does in OpenSSL 3, without its detour */
		OSSL_PARAM	p[2];

		p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *) tag, 16);
		p[1] = OSSL_PARAM_construct_end();
		if (EVP_CIPHER_CTX_set_params(a->dec, p) != 1)
		{
			if (ct_len > 0)
				OPENSSL_cleanse(pt, ct_len);
			return -1;
		}
	}
#else
	if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_GCM_SET_TAG, 16, (void *) tag) != 1)
	{
		if (ct_len > 0)
			OPENSSL_cleanse(pt, ct_len);
		return -1;
	}
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
/*
 * Whether one of an implementation's names (a ':'-separated list) names the
 * algorithm EVP fetched, by any of its names (EVP_CIPHER_is_a() knows them
 * all: "id-aes256-GCM" and the OID are AES-256-GCM too, as for the fetch).
 * A name too long to copy counts as a match: an unknown entry makes the
 * choice ambiguous, and an ambiguous choice keeps the EVP path.
 */
static bool
cv_gcm_names_match(const EVP_CIPHER *cipher, const char *names)
{
	char		one[128];

	while (names != NULL && *names != '\0')
	{
		const char *end = strchr(names, ':');
		size_t		n = end != NULL ? (size_t) (end - names) : strlen(names);

		if (n >= sizeof(one))
			return true;
		memcpy(one, names, n);
		one[n] = '\0';
		if (n > 0 && EVP_CIPHER_is_a(cipher, one))
			return true;
		names = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/*
 * The direct path against the EVP path on constant vectors (public inputs):
 * the same ciphertext and tag at lengths around the block size and across
 * the two ways associated data is fed, each opening the other's output, and
 * a changed tag, ciphertext or associated data refused.
 */
static bool
cv_gcm_self_test(void)
{
	static const size_t lens[] = {0, 1, 12, 15, 16, 17, 25, 64, 200, 1000};
	uint8_t		nonce[12];
	uint8_t		aad[CV_AAD_JOIN_MAX + 40];
	uint8_t		pt[1000],
				ct1[1000],
				ct2[1000],
				back[1000];
	uint8_t		tag1[16],
				tag2[16];
	CvAead	   *d = cv_aead_new_path((const uint8_t *) "customer_vault gcm self-test key", true);
	CvAead	   *e = cv_aead_new_path((const uint8_t *) "customer_vault gcm self-test key", false);
	bool		ok = d != NULL && e != NULL;
	size_t		i,
				k;

	for (i = 0; i < sizeof(aad); i++)
		aad[i] = (uint8_t) (i * 31 + 7);
	for (i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t) (i * 13 + 1);
	for (k = 0; ok && k < 3 * sizeof(lens) / sizeof(lens[0]); k++)
	{
		size_t		len = lens[k / 3];
		/* associated data: header and context joined, none, or two updates */
		size_t		a1 = k % 3 == 0 ? 8 : k % 3 == 1 ? 0 : CV_AAD_JOIN_MAX;
		size_t		a2 = k % 3 == 0 ? 12 : k % 3 == 1 ? 0 : 40;

		memset(nonce, (int) k, sizeof(nonce));
		ok = cv_aead_seal(d, nonce, aad, a1, aad + a1, a2, pt, len, ct1, tag1) &&
			cv_aead_seal(e, nonce, aad, a1, aad + a1, a2, pt, len, ct2, tag2) &&
			memcmp(ct1, ct2, len) == 0 && memcmp(tag1, tag2, 16) == 0 &&
			cv_aead_open(d, nonce, aad, a1, aad + a1, a2, ct2, len, tag2, back) == 1 &&
			memcmp(back, pt, len) == 0 &&
			cv_aead_open(e, nonce, aad, a1, aad + a1, a2, ct1, len, tag1, back) == 1 &&
			memcmp(back, pt, len) == 0;
		if (!ok)
			break;
		tag1[k % 16] ^= 0x01;
		ok = cv_aead_open(d, nonce, aad, a1, aad + a1, a2, ct1, len, tag1, back) == 0;
		tag1[k % 16] ^= 0x01;
		if (ok && len > 0)
		{
			ct1[len - 1] ^= 0x80;
			ok = cv_aead_open(d, nonce, aad, a1, aad + a1, a2, ct1, len, tag1, back) == 0;
			ct1[len - 1] ^= 0x80;
		}
		if (ok && a1 + a2 > 0)
			ok = cv_aead_open(d, nonce, aad, a1 + a2 - 1, NULL, 0, ct1, len, tag1, back) == 0;
	}
	cv_aead_free(d);
	cv_aead_free(e);
	return ok;
}

/*
 * Resolve the direct path (once per process): the AES-256-GCM entry of the
 * dispatch table of the provider EVP_CIPHER_fetch() chose, every function
 * the seal and open need, and the self-test.  Errors OpenSSL queued on the
 * way are dropped; the EVP path reports its own.
 */
static void
cv_gcm_resolve(void)
{
	EVP_CIPHER *cipher;
	const OSSL_PROVIDER *prov = NULL;
	const OSSL_ALGORITHM *algs = NULL;
	const OSSL_ALGORITHM *alg;
	const OSSL_DISPATCH *fn = NULL;
	CvGcmProv	g;
	int			no_cache = 0;
	int			matches = 0;

	cv_gcm_state = -1;			/* unless everything below holds */
	memset(&g, 0, sizeof(g));
	ERR_set_mark();
	cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (cipher != NULL)
		prov = EVP_CIPHER_get0_provider(cipher);
	if (prov != NULL)
		algs = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_cache);
	/*
	 * The provider's one implementation of the algorithm.  Which of several
	 * EVP chose (by the properties of each and the default properties of
	 * the configuration: fips=yes against fips=no, say) is not told, so with
	 * more than one the EVP path stays.
	 */
	for (alg = algs; alg != NULL && alg->algorithm_names != NULL; alg++)
		if (cv_gcm_names_match(cipher, alg->algorithm_names))
		{
			if (++matches > 1)
			{
				fn = NULL;
				break;
			}
			fn = alg->implementation;
		}
	for (; fn != NULL && fn->function_id != 0; fn++)
	{
		switch (fn->function_id)
		{
			case OSSL_FUNC_CIPHER_NEWCTX:
				g.newctx = OSSL_FUNC_cipher_newctx(fn);
				break;
			case OSSL_FUNC_CIPHER_FREECTX:
				g.freectx = OSSL_FUNC_cipher_freectx(fn);
				break;
			case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
				g.einit = OSSL_FUNC_cipher_encrypt_init(fn);
				break;
			case OSSL_FUNC_CIPHER_DECRYPT_INIT:
				g.dinit = OSSL_FUNC_cipher_decrypt_init(fn);
				break;
			case OSSL_FUNC_CIPHER_UPDATE:
				g.update = OSSL_FUNC_cipher_update(fn);
				break;
			case OSSL_FUNC_CIPHER_FINAL:
				g.final = OSSL_FUNC_cipher_final(fn);
				break;
			case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
				g.get_ctx_params = OSSL_FUNC_cipher_get_ctx_params(fn);
				break;
			case OSSL_FUNC_CIPHER_SET_CTX_PARAMS:
				g.set_ctx_params = OSSL_FUNC_cipher_set_ctx_params(fn);
				break;
		}
	}
	if (algs != NULL)
		OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
	if (prov != NULL)
		g.provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
	if (g.provctx != NULL && g.newctx != NULL && g.freectx != NULL && g.einit != NULL &&
		g.dinit != NULL && g.update != NULL && g.final != NULL && g.get_ctx_params != NULL &&
		g.set_ctx_params != NULL)
	{
		g.cipher = cipher;
		cv_gcm = g;
		if (cv_gcm_self_test())
		{
			cv_gcm_state = 1;
			ERR_pop_to_mark();
			return;
		}
		memset(&cv_gcm, 0, sizeof(cv_gcm));
	}
	EVP_CIPHER_free(cipher);
	ERR_pop_to_mark();
}
#endif

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

/*
 * SHA-256, with one digest fetched and one context made per process and
 * reused: the one-shot EVP_Digest() fetches the algorithm by name and makes
 * and frees a context on every call, most of its cost on the short inputs of
 * the consent ledger (two hashes an entry).  The context holds no input
 * after a hash (OpenSSL cleanses its block buffer when it finishes).
 */
bool
cv_sha256(const uint8_t *msg, size_t len, uint8_t out[32])
{
	static const EVP_MD *md = NULL;
	static EVP_MD_CTX *ctx = NULL;
	unsigned int outl = 0;

	if (md == NULL)
	{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
#endif
		if (md == NULL)
			md = EVP_sha256();
	}
	if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
		return false;
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		EVP_DigestUpdate(ctx, msg, len) != 1 ||
		EVP_DigestFinal_ex(ctx, out, &outl) != 1 || outl != 32)
	{
		EVP_MD_CTX_reset(ctx);
		return false;
	}
	return true;
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
