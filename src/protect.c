/*-------------------------------------------------------------------------
 * protect.c
 *		The transparent path: protected columns (protect_column).
 *
 * A protected column keeps its text type and stores the text form of a
 * text envelope.  Its BEFORE INSERT OR UPDATE trigger seals plaintext before
 * the row is written, keeps the blind index current, and re-binds a value
 * whose row context changed.  The associated data of a value is the
 * column's binding (its qualified name at protection time, length
 * prefixed) followed by the row's context column as text, so a value moved
 * to another column or row fails to authenticate.  Column numbers, the
 * context column's output function and the keys are resolved once per
 * statement and kept in the trigger's fn_extra.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* what one trigger needs, resolved on its first row in a statement */
typedef struct CvProtectState
{
	Oid			tgoid;
	int			attnum;			/* the protected column */
	int			bidx_attnum;	/* 0 when there is no blind index */
	int			ctx_attnum;		/* 0 when there is no context column */
	int			bidx_bits;		/* blind index length in bits */
	const char *bidx_binding;	/* bound to the column; NULL: 0.1.0 trigger */
	FmgrInfo	ctx_out;		/* output function of the context column */
	uint64		generation;		/* keys below valid for this cache generation */
	CvKey	   *key;			/* active version: seals */
	CvKey	   *bkey;			/* first version: blind index */
} CvProtectState;

PG_FUNCTION_INFO_V1(cv_protect_trigger);
PG_FUNCTION_INFO_V1(cv_is_sealed);
PG_FUNCTION_INFO_V1(cv_seal_column);
PG_FUNCTION_INFO_V1(cv_open_column);

/* look a column of the trigger's table up by name, or raise an error */
static int
cv_protect_attnum(Relation rel, const char *name, const char *what)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s \"%s\" of table \"%s\" does not exist",
						what, name, RelationGetRelationName(rel)),
				 errhint("Run customer_vault.protect_column() again after renaming columns.")));
	return attnum;
}

/* the trigger's state for this statement, set up on its first row */
static CvProtectState *
cv_protect_state(FunctionCallInfo fcinfo, TriggerData *td)
{
	CvProtectState *st = (CvProtectState *) fcinfo->flinfo->fn_extra;
	char	  **args = td->tg_trigger->tgargs;
	Relation	rel = td->tg_relation;

	if (st == NULL || st->tgoid != td->tg_trigger->tgoid)
	{
		st = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CvProtectState));
		st->tgoid = td->tg_trigger->tgoid;
		st->attnum = cv_protect_attnum(rel, args[0], "protected column");
		if (args[3][0] != '\0')
		{
			Oid			typoutput;
			bool		typisvarlena;

			st->ctx_attnum = cv_protect_attnum(rel, args[3], "context column");
			getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), st->ctx_attnum - 1)->atttypid,
							  &typoutput, &typisvarlena);
			fmgr_info_cxt(typoutput, &st->ctx_out, fcinfo->flinfo->fn_mcxt);
		}
		if (args[4][0] != '\0')
			st->bidx_attnum = cv_protect_attnum(rel, args[4], "blind index column");
		/* a sixth argument (0.2.0): the index is bound to the column and truncated */
		st->bidx_bits = CV_MAC_LEN * 8;
		if (td->tg_trigger->tgnargs == 6)
		{
			st->bidx_bits = pg_strtoint32(args[5]);
			st->bidx_binding = args[2];
		}
		fcinfo->flinfo->fn_extra = st;
	}
	return st;
}

/* make sure the state's key pointers belong to the current cache generation */
static void
cv_protect_keys(CvProtectState *st, const char *key_name)
{
	int			tries;

	if (!cv_keys_stale && st->generation == cv_key_generation)
		return;
	/* loading the second key may flush the cache: repeat until both stand */
	for (tries = 0; tries < 4; tries++)
	{
		uint64		gen;

		st->key = CvActiveKeyByName(key_name);
		gen = cv_key_generation;
		st->bkey = st->bidx_attnum ? CvBlindIndexKeyByName(key_name) : NULL;
		if (gen == cv_key_generation && !cv_keys_stale)
			break;
	}
	st->generation = cv_key_generation;
}

/* the row context string of a protected value: binding || context column text */
static char *
cv_protect_context(CvProtectState *st, Relation rel, HeapTuple tup, const char *binding,
				   int *len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, binding);
	if (st->ctx_attnum != 0)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, st->ctx_attnum, RelationGetDescr(rel), &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("context column \"%s\" of table \"%s\" must not be null in a row with protected values",
							NameStr(TupleDescAttr(RelationGetDescr(rel), st->ctx_attnum - 1)->attname),
							RelationGetRelationName(rel)),
					 errhint("Give the context column a value (for example the customer id) before the protected column.")));
		appendStringInfoString(&buf, OutputFunctionCall(&st->ctx_out, d));
	}
	*len = buf.len;
	return buf.data;
}

/*
 * BEFORE INSERT OR UPDATE ROW trigger of a protected column.  Arguments:
 * column, key name, binding, context column ('' for none), blind index
 * column ('' for none), and from 0.2.0 the blind index bits (the index is
 * then bound to the column's binding).  Plaintext is sealed before the row is written;
 * ciphertext arriving as it is (restore, COPY) is checked to belong to this
 * column and row and kept.
 */
Datum
cv_protect_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	CvProtectState *st;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	char	  **args;
	Datum		value;
	bool		isnull;
	Datum		repl_values[2];
	bool		repl_nulls[2] = {false, false};
	int			repl_cols[2];
	int			nrepl = 0;
	char	   *ctx;
	int			ctxlen;
	text	   *t;
	CvEnvelope	env;
	char	   *pt;
	size_t		ptlen;
	bool		wipe_pt = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)) ||
		(td->tg_trigger->tgnargs != 5 && td->tg_trigger->tgnargs != 6))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_vault protection trigger must fire BEFORE INSERT OR UPDATE FOR EACH ROW with five or six arguments")));

	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	args = td->tg_trigger->tgargs;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		newtup = td->tg_newtuple;
		oldtup = td->tg_trigtuple;
	}
	else
		newtup = td->tg_trigtuple;
	st = cv_protect_state(fcinfo, td);

	value = heap_getattr(newtup, st->attnum, desc, &isnull);
	if (isnull)
	{
		if (st->bidx_attnum == 0)
			return PointerGetDatum(newtup);
		repl_cols[0] = st->bidx_attnum;
		repl_values[0] = (Datum) 0;
		repl_nulls[0] = true;
		return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 1, repl_cols,
														 repl_values, repl_nulls));
	}

	ctx = cv_protect_context(st, rel, newtup, args[2], &ctxlen);
	t = DatumGetTextPP(value);

	if (oldtup != NULL)
	{
		bool		oldnull;
		Datum		oldvalue = heap_getattr(oldtup, st->attnum, desc, &oldnull);

		if (!oldnull && datumIsEqual(oldvalue, value, false, -1))
		{
			int			oldctxlen;
			char	   *oldctx = cv_protect_context(st, rel, oldtup, args[2], &oldctxlen);

			/* unchanged value under an unchanged context: nothing to do */
			if (oldctxlen == ctxlen && memcmp(oldctx, ctx, ctxlen) == 0)
			{
				if (st->bidx_attnum == 0)
					return PointerGetDatum(newtup);
				/* the blind index follows the value, not the statement */
				repl_cols[0] = st->bidx_attnum;
				repl_values[0] = heap_getattr(oldtup, st->bidx_attnum, desc, &repl_nulls[0]);
				return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 1, repl_cols,
																 repl_values, repl_nulls));
			}
			/* the row's context changed: re-bind the value to the new one */
			if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("protected column \"%s\" holds a value that is not a ciphertext envelope",
								args[0])));
			pt = palloc(env.ciphertext_len + 1);
			if (!CvOpenValue(&env, oldctx, oldctxlen, pt, &ptlen))
				return PointerGetDatum(newtup);	/* key destroyed: nothing to re-bind */
			wipe_pt = true;
			goto seal;
		}
	}

	if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) != NULL)
	{
		/* ciphertext arriving as it is: keep it if it belongs here */
		char	   *check = palloc(env.ciphertext_len + 1);
		size_t		checklen;
		int			rc = CvTryOpenValue(&env, ctx, ctxlen, check, &checklen);

		if (rc == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("ciphertext stored into protected column \"%s\" belongs to another column or row",
							args[0]),
					 errhint("Store plaintext; the column encrypts it.")));
		if (st->bidx_attnum == 0)
		{
			cv_wipe(check, env.ciphertext_len);
			return PointerGetDatum(newtup);
		}
		repl_cols[0] = st->bidx_attnum;
		if (rc < 0)
		{
			/* under a destroyed key: kept as it is, it reads as NULL */
			repl_values[0] = (Datum) 0;
			repl_nulls[0] = true;
		}
		else
		{
			cv_protect_keys(st, args[1]);
			repl_values[0] = PointerGetDatum(CvBlindIndex(st->bkey, st->bidx_binding, st->bidx_bits,
															   check, checklen));
		}
		cv_wipe(check, env.ciphertext_len);
		return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 1, repl_cols,
														 repl_values, repl_nulls));
	}

	/* plaintext: seal it before the row is written */
	pt = VARDATA_ANY(t);
	ptlen = VARSIZE_ANY_EXHDR(t);

seal:
	cv_protect_keys(st, args[1]);
	repl_cols[nrepl] = st->attnum;
	repl_values[nrepl] = PointerGetDatum(CvEnvelopeAsText(CvSealValue(st->key, CV_ENV_TYPE_TEXT,
																	   pt, ptlen, ctx, ctxlen)));
	nrepl++;
	if (st->bidx_attnum != 0)
	{
		repl_cols[nrepl] = st->bidx_attnum;
		repl_values[nrepl] = PointerGetDatum(CvBlindIndex(st->bkey, st->bidx_binding,
														   st->bidx_bits, pt, ptlen));
		nrepl++;
	}
	if (wipe_pt)
		cv_wipe(pt, ptlen);
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, nrepl, repl_cols,
													 repl_values, repl_nulls));
}

/* is_sealed(text): whether a text holds a well-formed text envelope (no allocation) */
Datum
cv_is_sealed(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(cv_envelope_text_check(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
										  CV_ENV_TYPE_TEXT) == CV_ENV_OK);
}

/*
 * _seal_column(plaintext, key_name, context): the text envelope stored by a
 * protected column, used by protect_column's one-time table rewrite.  A
 * value that already is an envelope is kept.
 */
Datum
cv_seal_column(PG_FUNCTION_ARGS)
{
	text	   *pt;
	text	   *ctx;
	char	   *name;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("the context column must not be null in a row with a value to protect"),
				 errhint("Give every such row a context value (for example the customer id) first.")));
	pt = PG_GETARG_TEXT_PP(0);
	ctx = PG_GETARG_TEXT_PP(2);
	if (cv_envelope_text_check(VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt), CV_ENV_TYPE_TEXT) == CV_ENV_OK)
		PG_RETURN_TEXT_P(pt);
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	PG_RETURN_TEXT_P(CvEnvelopeAsText(CvSealValue(CvActiveKeyByName(name), CV_ENV_TYPE_TEXT,
												  VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt),
												  VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx))));
}

/*
 * _open_column(value, context): the plaintext of a protected column's value,
 * what <table>_decrypted shows.  Decodes the text form straight into the
 * envelope (no text -> encrypted_text I/O round trip); NULL when the key was
 * shredded.
 */
Datum
cv_open_column(PG_FUNCTION_ARGS)
{
	text	   *t;
	text	   *ctx;
	CvEnvelope	env;
	text	   *res;
	size_t		ptlen;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the context of a protected value must not be null")));
	t = PG_GETARG_TEXT_PP(0);
	ctx = PG_GETARG_TEXT_PP(1);
	if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("protected column holds a value that is not a ciphertext envelope")));
	res = palloc(VARHDRSZ + env.ciphertext_len);
	if (!CvOpenValue(&env, VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx), VARDATA(res), &ptlen))
		PG_RETURN_NULL();
	SET_VARSIZE(res, VARHDRSZ + ptlen);
	PG_RETURN_TEXT_P(res);
}
