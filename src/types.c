/*-------------------------------------------------------------------------
 * types.c
 *		encrypted_text and encrypted_bytea: input, output, binary receive
 *		and send.  Both types are varlenas holding the binary envelope;
 *		their text form is CV_ENV_TEXT_PREFIX + base64.  Input accepts only
 *		a well-formed envelope of the right type, so COPY, pg_dump/restore
 *		and replication carry ciphertext and never encrypt twice.  No
 *		message ever quotes the input.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"

static const char *
cv_type_name(int type)
{
	return type == CV_ENV_TYPE_TEXT ? "encrypted_text" : "encrypted_bytea";
}

/* shared body of the input functions */
static Datum
cv_envelope_in(FunctionCallInfo fcinfo, int type)
{
	char	   *str = PG_GETARG_CSTRING(0);
	size_t		len = strlen(str);
	size_t		binlen = 0;
	bytea	   *res = NULL;
	CvEnvelope	env;
	CvEnvError	err;

	if (len > CV_ENV_TEXT_PREFIX_LEN + cv_base64_encoded_len(CV_MAX_PLAINTEXT + CV_ENV_OVERHEAD))
		err = CV_ENV_TOO_LONG;
	else
	{
		res = palloc(VARHDRSZ + cv_base64_max_decoded_len(len) + 1);
		err = cv_envelope_from_text(str, len, (uint8 *) VARDATA(res), &binlen);
		if (err == CV_ENV_OK)
			err = cv_envelope_parse((const uint8 *) VARDATA(res), binlen, type, &env);
	}
	if (err != CV_ENV_OK)
		CV_INPUT_ERROR(fcinfo,
					   (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("invalid input syntax for type %s", cv_type_name(type)),
						errdetail("%s", cv_envelope_strerror(err)),
						errhint("Values of this type are made by customer_vault.encrypt() or by a column protected with customer_vault.protect_column(); only ciphertext envelopes are accepted as input.")));
	SET_VARSIZE(res, VARHDRSZ + binlen);
	PG_RETURN_BYTEA_P(res);
}

/* shared body of the output functions: the text form, ciphertext only */
static Datum
cv_envelope_out(FunctionCallInfo fcinfo)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);
	size_t		binlen = VARSIZE_ANY_EXHDR(v);
	char	   *out = palloc(cv_envelope_text_len(binlen) + 1);
	size_t		n = cv_envelope_to_text((const uint8 *) VARDATA_ANY(v), binlen, out);

	out[n] = '\0';
	PG_RETURN_CSTRING(out);
}

/* shared body of the receive functions: length checked before palloc */
static Datum
cv_envelope_recv(FunctionCallInfo fcinfo, int type)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			len = buf->len - buf->cursor;
	bytea	   *res;
	CvEnvelope	env;
	CvEnvError	err;

	if (len < 0 || (size_t) len > CV_MAX_PLAINTEXT + CV_ENV_OVERHEAD)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("binary %s value is too long", cv_type_name(type))));
	res = palloc(VARHDRSZ + len);
	SET_VARSIZE(res, VARHDRSZ + len);
	pq_copymsgbytes(buf, VARDATA(res), len);
	err = cv_envelope_parse((const uint8 *) VARDATA(res), (size_t) len, type, &env);
	if (err != CV_ENV_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary representation for type %s", cv_type_name(type)),
				 errdetail("%s", cv_envelope_strerror(err))));
	PG_RETURN_BYTEA_P(res);
}

/* shared body of the send functions: the binary envelope as it is */
static Datum
cv_envelope_send(FunctionCallInfo fcinfo)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(cv_encrypted_text_in);
PG_FUNCTION_INFO_V1(cv_encrypted_text_out);
PG_FUNCTION_INFO_V1(cv_encrypted_text_recv);
PG_FUNCTION_INFO_V1(cv_encrypted_text_send);
PG_FUNCTION_INFO_V1(cv_encrypted_bytea_in);
PG_FUNCTION_INFO_V1(cv_encrypted_bytea_out);
PG_FUNCTION_INFO_V1(cv_encrypted_bytea_recv);
PG_FUNCTION_INFO_V1(cv_encrypted_bytea_send);

/* encrypted_text input */
Datum
cv_encrypted_text_in(PG_FUNCTION_ARGS)
{
	return cv_envelope_in(fcinfo, CV_ENV_TYPE_TEXT);
}

/* encrypted_text output */
Datum
cv_encrypted_text_out(PG_FUNCTION_ARGS)
{
	return cv_envelope_out(fcinfo);
}

/* encrypted_text binary receive */
Datum
cv_encrypted_text_recv(PG_FUNCTION_ARGS)
{
	return cv_envelope_recv(fcinfo, CV_ENV_TYPE_TEXT);
}

/* encrypted_text binary send */
Datum
cv_encrypted_text_send(PG_FUNCTION_ARGS)
{
	return cv_envelope_send(fcinfo);
}

/* encrypted_bytea input */
Datum
cv_encrypted_bytea_in(PG_FUNCTION_ARGS)
{
	return cv_envelope_in(fcinfo, CV_ENV_TYPE_BYTEA);
}

/* encrypted_bytea output */
Datum
cv_encrypted_bytea_out(PG_FUNCTION_ARGS)
{
	return cv_envelope_out(fcinfo);
}

/* encrypted_bytea binary receive */
Datum
cv_encrypted_bytea_recv(PG_FUNCTION_ARGS)
{
	return cv_envelope_recv(fcinfo, CV_ENV_TYPE_BYTEA);
}

/* encrypted_bytea binary send */
Datum
cv_encrypted_bytea_send(PG_FUNCTION_ARGS)
{
	return cv_envelope_send(fcinfo);
}
