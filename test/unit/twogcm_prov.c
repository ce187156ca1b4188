/*-------------------------------------------------------------------------
 * twogcm_prov.c
 *		A test provider for OpenSSL 3 (test/unit/gcm_provider_choice.c):
 *		AES-256-GCM registered twice under the same name, "fips=no" first
 *		in its table and "fips=yes" second, as a provider may offer an
 *		approved and a non-approved implementation of one algorithm.  Both
 *		delegate the cipher to the default provider's AES-256-GCM, so they
 *		compute the same bytes; each counts the contexts made of it
 *		(twogcm_newctx_count[0] for fips=no, [1] for fips=yes), which is
 *		how the test tells which implementation sealed a value.
 *-------------------------------------------------------------------------
 */
#include <openssl/opensslv.h>

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <stdlib.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

int			twogcm_newctx_count[2];

typedef struct TwoGcmCtx
{
	EVP_CIPHER_CTX *c;
	int			inited;
} TwoGcmCtx;

static EVP_CIPHER *twogcm_inner;

static void *
twogcm_newctx(int which)
{
	TwoGcmCtx  *x;

	if (twogcm_inner == NULL &&
		(twogcm_inner = EVP_CIPHER_fetch(NULL, "AES-256-GCM", "provider=default")) == NULL)
		return NULL;
	x = calloc(1, sizeof(TwoGcmCtx));
	if (x == NULL || (x->c = EVP_CIPHER_CTX_new()) == NULL)
	{
		free(x);
		return NULL;
	}
	twogcm_newctx_count[which]++;
	return x;
}

static void *
twogcm_newctx_nonfips(void *provctx)
{
	return twogcm_newctx(0);
}

static void *
twogcm_newctx_fips(void *provctx)
{
	return twogcm_newctx(1);
}

static void
twogcm_freectx(void *vctx)
{
	TwoGcmCtx  *x = vctx;

	EVP_CIPHER_CTX_free(x->c);
	free(x);
}

static int
twogcm_init(void *vctx, const unsigned char *key, size_t keylen,
			const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[], int enc)
{
	TwoGcmCtx  *x = vctx;

	if (!x->inited)
	{
		if (EVP_CipherInit_ex(x->c, twogcm_inner, NULL, NULL, NULL, enc) != 1)
			return 0;
		x->inited = 1;
	}
	if (iv != NULL)
	{
		OSSL_PARAM	p[2];

		p[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
		p[1] = OSSL_PARAM_construct_end();
		if (EVP_CIPHER_CTX_set_params(x->c, p) != 1)
			return 0;
	}
	if (EVP_CipherInit_ex(x->c, NULL, NULL, key, iv, enc) != 1)
		return 0;
	return params == NULL || EVP_CIPHER_CTX_set_params(x->c, params) == 1;
}

static int
twogcm_einit(void *vctx, const unsigned char *key, size_t keylen,
			 const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[])
{
	return twogcm_init(vctx, key, keylen, iv, ivlen, params, 1);
}

static int
twogcm_dinit(void *vctx, const unsigned char *key, size_t keylen,
			 const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[])
{
	return twogcm_init(vctx, key, keylen, iv, ivlen, params, 0);
}

static int
twogcm_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
			  const unsigned char *in, size_t inl)
{
	TwoGcmCtx  *x = vctx;
	int			n = 0;

	if (inl > (size_t) 0x7fffffff || (out != NULL && outsize < inl) ||
		EVP_CipherUpdate(x->c, out, &n, in, (int) inl) != 1)
		return 0;
	*outl = (size_t) n;
	return 1;
}

static int
twogcm_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
	TwoGcmCtx  *x = vctx;
	int			n = 0;

	if (EVP_CipherFinal_ex(x->c, out, &n) != 1)
		return 0;
	*outl = (size_t) n;
	return 1;
}

static int
twogcm_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
	return EVP_CIPHER_CTX_get_params(((TwoGcmCtx *) vctx)->c, params);
}

static int
twogcm_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	return params == NULL || EVP_CIPHER_CTX_set_params(((TwoGcmCtx *) vctx)->c, params);
}

static int
twogcm_get_params(OSSL_PARAM params[])
{
	OSSL_PARAM *p;

	if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)) != NULL &&
		!OSSL_PARAM_set_uint(p, EVP_CIPH_GCM_MODE))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) != NULL &&
		!OSSL_PARAM_set_size_t(p, 32))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) != NULL &&
		!OSSL_PARAM_set_size_t(p, 12))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_BLOCK_SIZE)) != NULL &&
		!OSSL_PARAM_set_size_t(p, 1))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD)) != NULL &&
		!OSSL_PARAM_set_int(p, 1))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CUSTOM_IV)) != NULL &&
		!OSSL_PARAM_set_int(p, 1))
		return 0;
	return 1;
}

static const OSSL_PARAM twogcm_gettable[] = {
	OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, NULL),
	OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
	OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
	OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, NULL),
	OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, NULL),
	OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, NULL),
	OSSL_PARAM_END
};
static const OSSL_PARAM twogcm_ctx_gettable[] = {
	OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
	OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
	OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TAGLEN, NULL),
	OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
	OSSL_PARAM_END
};
static const OSSL_PARAM twogcm_ctx_settable[] = {
	OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, NULL),
	OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
twogcm_gettable_params(void *provctx)
{
	return twogcm_gettable;
}

static const OSSL_PARAM *
twogcm_gettable_ctx_params(void *cctx, void *provctx)
{
	return twogcm_ctx_gettable;
}

static const OSSL_PARAM *
twogcm_settable_ctx_params(void *cctx, void *provctx)
{
	return twogcm_ctx_settable;
}

#define TWOGCM_FUNCTIONS(newctx) { \
	{ OSSL_FUNC_CIPHER_NEWCTX, (void (*)(void)) newctx }, \
	{ OSSL_FUNC_CIPHER_FREECTX, (void (*)(void)) twogcm_freectx }, \
	{ OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void)) twogcm_einit }, \
	{ OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void)) twogcm_dinit }, \
	{ OSSL_FUNC_CIPHER_UPDATE, (void (*)(void)) twogcm_update }, \
	{ OSSL_FUNC_CIPHER_FINAL, (void (*)(void)) twogcm_final }, \
	{ OSSL_FUNC_CIPHER_GET_PARAMS, (void (*)(void)) twogcm_get_params }, \
	{ OSSL_FUNC_CIPHER_GET_CTX_PARAMS, (void (*)(void)) twogcm_get_ctx_params }, \
	{ OSSL_FUNC_CIPHER_SET_CTX_PARAMS, (void (*)(void)) twogcm_set_ctx_params }, \
	{ OSSL_FUNC_CIPHER_GETTABLE_PARAMS, (void (*)(void)) twogcm_gettable_params }, \
	{ OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void)) twogcm_gettable_ctx_params }, \
	{ OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void)) twogcm_settable_ctx_params }, \
	{ 0, NULL } }

static const OSSL_DISPATCH twogcm_nonfips_functions[] = TWOGCM_FUNCTIONS(twogcm_newctx_nonfips);
static const OSSL_DISPATCH twogcm_fips_functions[] = TWOGCM_FUNCTIONS(twogcm_newctx_fips);

static const OSSL_ALGORITHM twogcm_ciphers[] = {
	{"AES-256-GCM:id-aes256-GCM", "provider=twogcm,fips=no", twogcm_nonfips_functions, "twogcm fips=no"},
	{"AES-256-GCM:id-aes256-GCM", "provider=twogcm,fips=yes", twogcm_fips_functions, "twogcm fips=yes"},
	{NULL, NULL, NULL, NULL}
};

static const OSSL_ALGORITHM *
twogcm_query(void *provctx, int operation_id, int *no_cache)
{
	*no_cache = 0;
	return operation_id == OSSL_OP_CIPHER ? twogcm_ciphers : NULL;
}

static void
twogcm_teardown(void *provctx)
{
	EVP_CIPHER_free(twogcm_inner);
	twogcm_inner = NULL;
}

static const OSSL_DISPATCH twogcm_provider_functions[] = {
	{OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void)) twogcm_query},
	{OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void)) twogcm_teardown},
	{0, NULL}
};

int			OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
							   const OSSL_DISPATCH **out, void **provctx);

int
OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
				   const OSSL_DISPATCH **out, void **provctx)
{
	static int	twogcm_provctx;

	*out = twogcm_provider_functions;
	*provctx = &twogcm_provctx;
	return 1;
}
#else
int			twogcm_newctx_count[2];	/* OpenSSL 1.1: no providers, nothing to test */
#endif
