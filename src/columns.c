/*-------------------------------------------------------------------------
 * columns.c
 *		Sealing and opening values: encrypt/decrypt (explicit path),
 *		encrypt_for_subject, key_of, blind_index, and the BEFORE ROW trigger
 *		behind protect_column (transparent path).
 *
 * Associated data of a value = the 8-byte envelope header (version, type,
 * flags, key id) followed by the caller's context when one is given (the
 * header's context flag records that).  protect_column's context is the
 * column's binding string (its qualified name at protection time, length
 * prefixed) followed by the row's context column as text, so a value
 * moved to another column or row fails to authenticate.
 *
 * Every opening of a value (decrypt(), the decrypted view's _open_column,
 * re-sealing by reencrypt and by the protect trigger, the trigger's check of
 * ciphertext written as it is) goes through CvOpenEnvelope(), the one place
 * where the decrypt audit and decrypt limits hook in.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* per call site memo of the last key used, valid for one statement (epoch) */
typedef struct CvKeyMemo
{
	uint64		epoch;
	uint32		id;
	CvKey	   *key;
	char		name[NAMEDATALEN];
} CvKeyMemo;

/* the memo of this call site, allocated on first use */
static CvKeyMemo *
cv_memo(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
														  sizeof(CvKeyMemo));
	return (CvKeyMemo *) fcinfo->flinfo->fn_extra;
}

/* the data key with this id, through the call site's memo */
static CvKey *
cv_memo_key_by_id(FunctionCallInfo fcinfo, uint32 id)
{
	CvKeyMemo  *m = cv_memo(fcinfo);
	uint64		epoch = CvKeyEpoch();

	if (m->epoch != epoch || m->id != id || m->key == NULL)
	{
		m->key = CvKeyById(id);
		m->id = id;
		m->name[0] = '\0';
		m->epoch = epoch;
	}
	return m->key;
}

/* the active key of a name, through the call site's memo */
static CvKey *
cv_memo_key_by_name(FunctionCallInfo fcinfo, text *name, bool blind)
{
	CvKeyMemo  *m = cv_memo(fcinfo);
	int			len = VARSIZE_ANY_EXHDR(name);
	uint64		epoch = CvKeyEpoch();

	if (m->epoch != epoch || m->key == NULL ||
		len >= NAMEDATALEN || strncmp(m->name, VARDATA_ANY(name), len) != 0 ||
		m->name[len] != '\0')
	{
		char	   *cname = text_to_cstring(name);

		m->key = blind ? CvBlindIndexKeyByName(cname) : CvActiveKeyByName(cname);
		strlcpy(m->name, cname, NAMEDATALEN);
		m->id = m->key->id;
		m->epoch = epoch;
		pfree(cname);
	}
	return m->key;
}

/*
 * The binary length of the envelope sealing ptlen bytes under a key, or an
 * error when the key was destroyed or the value is too long.
 */
size_t
CvSealedLen(CvKey *key, size_t ptlen)
{
	if (key->destroyed || key->aead == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("data key %u has been destroyed", key->id)));
	if (cv_padded_len(ptlen, key->pad_to) > CV_MAX_PLAINTEXT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too long to encrypt"),
				 errdetail("The largest value is %d bytes, length padding included.", CV_MAX_PLAINTEXT)));
	return cv_envelope_sealed_len(ptlen, key->pad_to);
}

/*
 * Seal plaintext under a key into out (CvSealedLen() bytes, already checked
 * by the caller); ctx NULL means no context.
 */
void
CvSealInto(CvKey *key, int type, const char *pt, size_t ptlen,
		   const char *ctx, int ctxlen, uint8 *out)
{
	uint8		nonce[CV_NONCE_LEN];

	CvRandomNonce(nonce);
	if (!cv_envelope_seal(key->aead, out, type, key->id, nonce,
						  (const uint8 *) ctx, ctx ? ctxlen : 0,
						  (const uint8 *) pt, ptlen, key->pad_to))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("AES-256-GCM encryption failed in the crypto library")));
}

/* seal plaintext under a key (padded to the key's block); ctx NULL means no context */
bytea *
CvSealValue(CvKey *key, int type, const char *pt, size_t ptlen,
			const char *ctx, int ctxlen)
{
	bytea	   *res;
	size_t		len = CvSealedLen(key, ptlen);

	res = palloc(VARHDRSZ + len);
	SET_VARSIZE(res, VARHDRSZ + len);
	CvSealInto(key, type, pt, ptlen, ctx, ctxlen, (uint8 *) VARDATA(res));
	return res;
}

/* parse a stored value, or raise an error (a stored value should always parse) */
void
CvParseOrError(const bytea *value, int type, CvEnvelope *env)
{
	CvEnvError	err = cv_envelope_parse((const uint8 *) VARDATA_ANY(value),
										VARSIZE_ANY_EXHDR(value), type, env);

	if (err != CV_ENV_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored encrypted value is malformed"),
				 errdetail("%s", cv_envelope_strerror(err))));
}

/*
 * Open an envelope into pt_out (room for ciphertext_len bytes; the
 * plaintext length goes to *ptlen): the one decryption entry point of the
 * extension.  Returns CV_OPEN_OK when authentic, CV_OPEN_FAILED when not
 * (or when the presence of a context differs), CV_OPEN_DESTROYED when its key
 * was shredded, CV_OPEN_NO_KEY when the key does not exist and missing_ok
 * (else that is an error).  Library failures raise errors.  pt_out holds
 * nothing readable unless CV_OPEN_OK.
 */
int
CvOpenEnvelope(const CvEnvelope *env, const char *ctx, int ctxlen, CvOpenUse use,
			   bool missing_ok, char *pt_out, size_t *ptlen)
{
	CvKey	   *key = missing_ok ? CvKeyByIdOrNull(env->key_id) : CvKeyById(env->key_id);
	int			rc;

	*ptlen = 0;
	if (key == NULL)
		return CV_OPEN_NO_KEY;
	if (key->destroyed || key->aead == NULL)
		return CV_OPEN_DESTROYED;
	rc = cv_envelope_open(key->aead, env, (const uint8 *) ctx, ctx ? ctxlen : 0,
						  (uint8 *) pt_out, ptlen);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("AES-256-GCM decryption failed in the crypto library")));
	if (rc == 0)
		return CV_OPEN_FAILED;
	if (use == CV_OPEN_READ)
	{
		/* the audit first: a value the brake then refuses was still opened */
		CvAuditNoteDecrypt(env->key_id, ctx, ctx ? ctxlen : 0);
		CvBrakeNoteDecrypt(env->key_id);
	}
	return CV_OPEN_OK;
}

/* open an envelope into pt_out; false when its key was destroyed, errors otherwise */
bool
CvOpenValue(const CvEnvelope *env, const char *ctx, int ctxlen, CvOpenUse use,
			char *pt_out, size_t *ptlen)
{
	int			rc = CvOpenEnvelope(env, ctx, ctxlen, use, false, pt_out, ptlen);

	if (rc == CV_OPEN_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt value: authentication failed"),
				 errdetail("The value was altered, moved to another column or row, or the context does not match the one it was encrypted with.")));
	return rc == CV_OPEN_OK;
}

/* blind index of a plaintext under a named key's derived subkey */
bytea *
CvBlindMac(CvKey *key, const char *pt, size_t ptlen)
{
	bytea	   *mac = palloc(VARHDRSZ + CV_MAC_LEN);

	SET_VARSIZE(mac, VARHDRSZ + CV_MAC_LEN);
	if (key->bidx == NULL ||
		!cv_mac_compute(key->bidx, (const uint8 *) pt, ptlen, (uint8 *) VARDATA(mac)))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not compute HMAC-SHA-256")));
	return mac;
}

/* the context argument at position argno as a detoasted text, or NULL */
static text *
cv_context_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	return PG_GETARG_TEXT_PP(argno);
}

/* shared body of encrypt(text|bytea, key_name, context) */
static Datum
cv_encrypt_common(FunctionCallInfo fcinfo, int type)
{
	bytea	   *pt;
	text	   *ctx;
	CvKey	   *key;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pt = PG_GETARG_BYTEA_PP(0);
	ctx = cv_context_arg(fcinfo, 2);
	key = cv_memo_key_by_name(fcinfo, PG_GETARG_TEXT_PP(1), false);
	PG_RETURN_BYTEA_P(CvSealValue(key, type, VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt),
								  ctx ? VARDATA_ANY(ctx) : NULL,
								  ctx ? VARSIZE_ANY_EXHDR(ctx) : 0));
}

/* shared body of decrypt(encrypted_text|encrypted_bytea, context) */
static Datum
cv_decrypt_common(FunctionCallInfo fcinfo, int type)
{
	bytea	   *v;
	text	   *ctx;
	CvEnvelope	env;
	bytea	   *res;
	size_t		ptlen;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_BYTEA_PP(0);
	ctx = cv_context_arg(fcinfo, 1);
	CvParseOrError(v, type, &env);
	if (CvKeyById(env.key_id)->destroyed)
		PG_RETURN_NULL();		/* crypto-shredded: reads as NULL */
	if ((env.flags & CV_ENV_FLAG_CONTEXT) && ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value was encrypted with a context"),
				 errhint("Pass the context used at encryption time to decrypt().")));
	if (!(env.flags & CV_ENV_FLAG_CONTEXT) && ctx != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value was encrypted without a context"),
				 errhint("Call decrypt() without a context for this value.")));
	res = palloc(VARHDRSZ + env.ciphertext_len);
	if (!CvOpenValue(&env, ctx ? VARDATA_ANY(ctx) : NULL, ctx ? VARSIZE_ANY_EXHDR(ctx) : 0,
					 CV_OPEN_READ, VARDATA(res), &ptlen))
		PG_RETURN_NULL();
	SET_VARSIZE(res, VARHDRSZ + ptlen);
	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_BYTEA_P(res);
}

PG_FUNCTION_INFO_V1(cv_encrypt_text);
PG_FUNCTION_INFO_V1(cv_encrypt_bytea);
PG_FUNCTION_INFO_V1(cv_decrypt_text);
PG_FUNCTION_INFO_V1(cv_decrypt_bytea);
PG_FUNCTION_INFO_V1(cv_encrypt_for_subject);
PG_FUNCTION_INFO_V1(cv_key_of);
PG_FUNCTION_INFO_V1(cv_key_id_of);
PG_FUNCTION_INFO_V1(cv_blind_index);
PG_FUNCTION_INFO_V1(cv_reseal);
PG_FUNCTION_INFO_V1(cv_check_key);
PG_FUNCTION_INFO_V1(cv_needs_reseal);

/* _check_key(name): raise an error unless the named key exists and is active */
Datum
cv_check_key(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	(void) CvActiveKeyByName(name);
	PG_RETURN_VOID();
}

/*
 * _needs_reseal(value, text_form): whether a value is under an older
 * version of a named key (what reencrypt re-seals).
 */
Datum
cv_needs_reseal(PG_FUNCTION_ARGS)
{
	bool		is_text_form = PG_GETARG_BOOL(1);
	CvEnvelope	env;
	CvKey	   *key;
	CvKey	   *active;

	if (is_text_form)
	{
		text	   *t = PG_GETARG_TEXT_PP(0);

		if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) == NULL)
			PG_RETURN_BOOL(false);
	}
	else
		CvParseOrError(PG_GETARG_BYTEA_PP(0), 0, &env);
	key = cv_memo_key_by_id(fcinfo, env.key_id);
	if (key->is_subject || key->destroyed)
		PG_RETURN_BOOL(false);
	active = CvActiveKeyByName(key->name);
	PG_RETURN_BOOL(active->id != env.key_id);
}

/* encrypt(text, key_name, context) */
Datum
cv_encrypt_text(PG_FUNCTION_ARGS)
{
	return cv_encrypt_common(fcinfo, CV_ENV_TYPE_TEXT);
}

/* encrypt(bytea, key_name, context) */
Datum
cv_encrypt_bytea(PG_FUNCTION_ARGS)
{
	return cv_encrypt_common(fcinfo, CV_ENV_TYPE_BYTEA);
}

/* decrypt(encrypted_text, context) */
Datum
cv_decrypt_text(PG_FUNCTION_ARGS)
{
	return cv_decrypt_common(fcinfo, CV_ENV_TYPE_TEXT);
}

/* decrypt(encrypted_bytea, context) */
Datum
cv_decrypt_bytea(PG_FUNCTION_ARGS)
{
	return cv_decrypt_common(fcinfo, CV_ENV_TYPE_BYTEA);
}

/* encrypt_for_subject(subject, plaintext, context): under the subject's own key */
Datum
cv_encrypt_for_subject(PG_FUNCTION_ARGS)
{
	char	   *subject;
	text	   *pt;
	text	   *ctx;
	CvKey	   *key;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subject identifier must not be null")));
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	subject = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pt = PG_GETARG_TEXT_PP(1);
	ctx = cv_context_arg(fcinfo, 2);
	key = CvSubjectKey(subject, true);
	PG_RETURN_BYTEA_P(CvSealValue(key, CV_ENV_TYPE_TEXT, VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt),
								  ctx ? VARDATA_ANY(ctx) : NULL,
								  ctx ? VARSIZE_ANY_EXHDR(ctx) : 0));
}

/* key_of(value): 'name:version', or 'subject:<key id>' for a subject key */
Datum
cv_key_of(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);
	CvEnvelope	env;
	CvKey	   *key;
	CvEnvError	err = cv_envelope_parse((const uint8 *) VARDATA_ANY(v),
										VARSIZE_ANY_EXHDR(v), 0, &env);

	if (err != CV_ENV_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored encrypted value is malformed"),
				 errdetail("%s", cv_envelope_strerror(err))));
	key = cv_memo_key_by_id(fcinfo, env.key_id);
	if (key->is_subject)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("subject:%u", key->id)));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s:%d", key->name, key->version)));
}

/* the key id recorded in a value's envelope, without any key access */
Datum
cv_key_id_of(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);
	CvEnvelope	env;

	CvParseOrError(v, 0, &env);
	PG_RETURN_INT32((int32) env.key_id);
}

/* blind_index(plaintext, key_name): HMAC-SHA-256 under a subkey of the key */
Datum
cv_blind_index(PG_FUNCTION_ARGS)
{
	text	   *pt = PG_GETARG_TEXT_PP(0);
	CvKey	   *key = cv_memo_key_by_name(fcinfo, PG_GETARG_TEXT_PP(1), true);

	PG_RETURN_BYTEA_P(CvBlindMac(key, VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt)));
}

/*
 * Decode the text form of a text envelope into buf, which must hold
 * cv_base64_max_decoded_len(len) bytes (env then points into it); false
 * when it is not one.
 */
bool
CvTextToEnvelopeBuf(const char *s, size_t len, CvEnvelope *env, uint8 *buf)
{
	size_t		binlen;

	if (len < CV_ENV_TEXT_PREFIX_LEN ||
		memcmp(s, CV_ENV_TEXT_PREFIX, CV_ENV_TEXT_PREFIX_LEN) != 0)
		return false;
	return cv_envelope_from_text(s, len, buf, &binlen) == CV_ENV_OK &&
		cv_envelope_parse(buf, binlen, CV_ENV_TYPE_TEXT, env) == CV_ENV_OK;
}

/* decode the text form of a text envelope; NULL when it is not one */
bytea *
CvTextToEnvelope(const char *s, size_t len, CvEnvelope *env)
{
	bytea	   *bin;
	size_t		binlen;

	if (len < CV_ENV_TEXT_PREFIX_LEN ||
		memcmp(s, CV_ENV_TEXT_PREFIX, CV_ENV_TEXT_PREFIX_LEN) != 0)
		return NULL;
	bin = palloc(VARHDRSZ + cv_base64_max_decoded_len(len) + 1);
	if (cv_envelope_from_text(s, len, (uint8 *) VARDATA(bin), &binlen) != CV_ENV_OK ||
		cv_envelope_parse((const uint8 *) VARDATA(bin), binlen, CV_ENV_TYPE_TEXT, env) != CV_ENV_OK)
	{
		pfree(bin);
		return NULL;
	}
	SET_VARSIZE(bin, VARHDRSZ + binlen);
	/* env points into bin */
	return bin;
}

/* text form of a sealed value, as a text datum */
text *
CvEnvelopeAsText(bytea *sealed)
{
	size_t		binlen = VARSIZE_ANY_EXHDR(sealed);
	text	   *res = palloc(VARHDRSZ + cv_envelope_text_len(binlen));
	size_t		n = cv_envelope_to_text((const uint8 *) VARDATA_ANY(sealed), binlen, VARDATA(res));

	SET_VARSIZE(res, VARHDRSZ + n);
	return res;
}

/*
 * _reseal(value, context [, text_form]): the value re-encrypted under the
 * active version of its key's name (rotation); values under subject or
 * destroyed keys and values already under the active version come back
 * unchanged.  Accepts encrypted_text/encrypted_bytea (as bytea) or a text
 * envelope (protected columns).  The plaintext never leaves this function
 * and is wiped.  Not STRICT (a NULL context means none): a NULL value gives
 * NULL, a NULL text_form is an error.
 */
Datum
cv_reseal(PG_FUNCTION_ARGS)
{
	Datum		arg;
	bool		is_text_form = false;
	text	   *ctx = cv_context_arg(fcinfo, 1);
	CvEnvelope	env;
	bytea	   *bin;
	CvKey	   *key;
	CvKey	   *active;
	char	   *pt;
	size_t		ptlen;
	bytea	   *sealed;

	if (PG_NARGS() > 2)
	{
		if (PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("text_form must not be null")));
		is_text_form = PG_GETARG_BOOL(2);
	}
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	arg = PG_GETARG_DATUM(0);
	if (is_text_form)
	{
		text	   *t = DatumGetTextPP(arg);

		bin = CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env);
		if (bin == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("protected column holds a value that is not a ciphertext envelope")));
	}
	else
	{
		bin = DatumGetByteaPP(arg);
		CvParseOrError(bin, 0, &env);
	}
	/* key references stay valid for the whole statement */
	key = CvKeyById(env.key_id);
	if (key->is_subject || key->destroyed)
		PG_RETURN_DATUM(arg);
	active = CvActiveKeyByName(key->name);
	if (active->id == env.key_id)
		PG_RETURN_DATUM(arg);
	pt = palloc(env.ciphertext_len + 1);
	if (!CvOpenValue(&env, ctx ? VARDATA_ANY(ctx) : NULL, ctx ? VARSIZE_ANY_EXHDR(ctx) : 0,
					 CV_OPEN_RESEAL, pt, &ptlen))
		PG_RETURN_DATUM(arg);
	sealed = CvSealValue(active, env.type, pt, ptlen,
						 ctx ? VARDATA_ANY(ctx) : NULL, ctx ? VARSIZE_ANY_EXHDR(ctx) : 0);
	cv_wipe(pt, env.ciphertext_len);
	pfree(pt);
	if (is_text_form)
		PG_RETURN_TEXT_P(CvEnvelopeAsText(sealed));
	PG_RETURN_BYTEA_P(sealed);
}
