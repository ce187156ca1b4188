/*-------------------------------------------------------------------------
 * protect.c
 *		The transparent path: protected columns (protect_column), and the
 *		row context their values are bound to.
 *
 * A protected column keeps its text type and stores the text form of a
 * text envelope.  Its BEFORE INSERT OR UPDATE trigger seals plaintext before
 * the row is written, keeps the blind index current, and re-binds a value
 * whose row context changed.  The associated data of a value is its row
 * context: the column's binding (its qualified name at protection time,
 * length prefixed) followed by the row's context column in a canonical text
 * form, so a value moved to another column or row fails to authenticate.
 *
 * The row context is built in one place, CvAppendRowContext(), used by the
 * trigger and, through _row_context(binding, value), by the protect_column
 * rewrite, reencrypt and the decrypted view.  Its text form of a value
 * depends on nothing but the value (never on DateStyle, TimeZone or the
 * like), and only the types listed in CvContextTypeSupported() are accepted.
 *
 * From 0.5.0 a table has one such trigger, cv_protect, for all its protected
 * columns (the per-table form, see below); the per-column triggers of older
 * versions keep working until the update replaces them.
 *
 * Column numbers, types, the keys and the statement's key epoch are resolved
 * on the trigger's first row in a statement and kept in its fn_extra.  The
 * trigger checks the identity and types of the columns it works on: the
 * column numbers PostgreSQL keeps for the trigger (the per-column trigger's
 * UPDATE OF list, the per-table trigger's WHEN clause: they follow renames
 * and dumps) must be those the argument names resolve to now, and each
 * column must still have a type the trigger can work on; otherwise it fails
 * with an error instead of misreading a column.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"


/* what one trigger needs, resolved on its first row in a statement */
typedef struct CvProtectState
{
	Oid			tgoid;
	uint64		epoch;			/* key epoch the keys below belong to */
	int			attnum;			/* the protected column */
	int			bidx_attnum;	/* 0 when there is no blind index */
	int			ctx_attnum;		/* 0 when there is no context column */
	int			bidx_bits;		/* blind index length in bits */
	const char *bidx_binding;	/* bound to the column; NULL: 0.1.0 trigger */
	Oid			ctx_type;		/* base type of the context column */
	CvKey	   *key;			/* active version: seals */
	CvKey	   *bkey;			/* first version: blind index */
} CvProtectState;

/* _open_column's memo per call site: the buffer envelopes are decoded into */
typedef struct CvOpenMemo
{
	uint8	   *buf;
	size_t		cap;
} CvOpenMemo;

/* _row_context's memo per call site: the context's base type, a buffer */
typedef struct CvRowContextMemo
{
	Oid			base;
	StringInfoData buf;
} CvRowContextMemo;

PG_FUNCTION_INFO_V1(cv_protect_trigger);
PG_FUNCTION_INFO_V1(cv_is_sealed);
PG_FUNCTION_INFO_V1(cv_seal_column);
PG_FUNCTION_INFO_V1(cv_open_column);
PG_FUNCTION_INFO_V1(cv_row_context);
PG_FUNCTION_INFO_V1(cv_context_type_supported);

/* ---------- the row context ---------- */

/* whether values of this type (or a domain over it) can be a row context */
bool
CvContextTypeSupported(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case UUIDOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case INETOID:
		case DATEOID:
		case TIMESTAMPTZOID:
			return true;
		default:
			return false;
	}
}

/*
 * Append the canonical text form of a context value: what ::text gives
 * under DateStyle ISO and TimeZone UTC (char(n) without trailing spaces,
 * inet with its netmask length), whatever the session's settings.  base is
 * the value's base type (getBaseType(), resolved once by the caller).
 */
void
CvAppendRowContext(StringInfo buf, Oid base, Datum value)
{
	char		tmp[MAXDATELEN + 1];

	switch (base)
	{
		case INT2OID:
			appendBinaryStringInfo(buf, tmp, pg_itoa(DatumGetInt16(value), tmp));
			break;
		case INT4OID:
			appendBinaryStringInfo(buf, tmp, pg_ltoa(DatumGetInt32(value), tmp));
			break;
		case INT8OID:
			appendBinaryStringInfo(buf, tmp, pg_lltoa(DatumGetInt64(value), tmp));
			break;
		case NUMERICOID:
			appendStringInfoString(buf, DatumGetCString(DirectFunctionCall1(numeric_out, value)));
			break;
		case UUIDOID:
			appendStringInfoString(buf, DatumGetCString(DirectFunctionCall1(uuid_out, value)));
			break;
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(value);

				appendBinaryStringInfo(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
		case BPCHAROID:
			{
				/* char(n) compares without its trailing spaces: so does the context */
				text	   *t = DatumGetTextPP(value);
				const char *p = VARDATA_ANY(t);
				int			len = VARSIZE_ANY_EXHDR(t);

				while (len > 0 && p[len - 1] == ' ')
					len--;
				appendBinaryStringInfo(buf, p, len);
				break;
			}
		case INETOID:
			{
				text	   *t = DatumGetTextPP(DirectFunctionCall1(network_show, value));

				appendBinaryStringInfo(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
		case DATEOID:
			{
				DateADT		d = DatumGetDateADT(value);
				struct pg_tm tm;

				if (DATE_NOT_FINITE(d))
					EncodeSpecialDate(d, tmp);
				else
				{
					j2date(d + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
					EncodeDateOnly(&tm, USE_ISO_DATES, tmp);
				}
				appendStringInfoString(buf, tmp);
				break;
			}
		case TIMESTAMPTZOID:
			{
				TimestampTz ts = DatumGetTimestampTz(value);
				struct pg_tm tm;
				fsec_t		fsec;

				if (TIMESTAMP_NOT_FINITE(ts))
					EncodeSpecialTimestamp(ts, tmp);
				else if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) == 0)
				{
					/* in UTC, printed with its offset (+00) */
					tm.tm_isdst = 0;
					EncodeDateTime(&tm, fsec, true, 0, NULL, USE_ISO_DATES, tmp);
				}
				else
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("timestamp out of range")));
				appendStringInfoString(buf, tmp);
				break;
			}
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("a context column of type %s is not supported", format_type_be(base)),
					 errhint("Use an integer, numeric, uuid, text, varchar, char(n), inet, date or timestamptz column.")));
	}
}

/*
 * _row_context(binding, value): the row context of a protected value, the
 * binding followed by the canonical text of the context column's value.
 * STRICT: a NULL context value gives NULL (refused by _seal_column and
 * _open_column when there is a value to protect).
 */
Datum
cv_row_context(PG_FUNCTION_ARGS)
{
	text	   *binding = PG_GETARG_TEXT_PP(0);
	CvRowContextMemo *m = (CvRowContextMemo *) fcinfo->flinfo->fn_extra;
	text	   *res;

	/* the argument's base type, resolved once per call site */
	if (m == NULL)
	{
		Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 1);
		MemoryContext old;

		if (!OidIsValid(typid))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("could not determine the type of the context value")));
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		m = palloc(sizeof(CvRowContextMemo));
		m->base = getBaseType(typid);
		initStringInfo(&m->buf);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = m;
	}
	/*
	 * Built in the call site's buffer (no 1 kB buffer per row), then copied
	 * once into a text of its size: header, binding, context value.
	 */
	resetStringInfo(&m->buf);
	appendBinaryStringInfo(&m->buf, VARDATA_ANY(binding), VARSIZE_ANY_EXHDR(binding));
	CvAppendRowContext(&m->buf, m->base, PG_GETARG_DATUM(1));
	res = palloc(VARHDRSZ + m->buf.len);
	SET_VARSIZE(res, VARHDRSZ + m->buf.len);
	memcpy(VARDATA(res), m->buf.data, m->buf.len);
	PG_RETURN_TEXT_P(res);
}

/* _context_type_supported(type): whether protect_column accepts it as a context column */
Datum
cv_context_type_supported(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(CvContextTypeSupported(PG_GETARG_OID(0)));
}

/* ---------- the trigger ---------- */

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

/* a column no longer is what protect_column found: refuse to touch the row */
static void
cv_protect_changed(Relation rel, const char *what, const char *name, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("%s \"%s\" of protected table \"%s\" was changed after customer_vault.protect_column()",
					what, name, RelationGetRelationName(rel)),
			 errdetail("%s", detail),
			 errhint("Restore the column as it was, or drop the protection trigger and protect the column again.")));
}

/*
 * Check a column a trigger found by name: it must be one of the columns the
 * trigger was created on (known says so: PostgreSQL keeps those through
 * renames and dumps) and of a type the trigger can work on (kind 0: a
 * protected column, 1: a context column, 2: a blind index column).
 */
static void
cv_protect_check_column(Relation rel, int attnum, bool known, const char *name, const char *what,
						int kind)
{
	Oid			typid = getBaseType(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid);

	if (!known)
		cv_protect_changed(rel, what, name,
						   "A column of this name is not the column the protection was set up on (it was renamed, or dropped and added again).");
	if (kind == 0 && typid != TEXTOID && typid != VARCHAROID)
		cv_protect_changed(rel, what, name, "A protected column must be of type text.");
	if (kind == 1 && !CvContextTypeSupported(typid))
		cv_protect_changed(rel, what, name, "Its type cannot serve as a row context.");
	if (kind == 2 && typid != BYTEAOID)
		cv_protect_changed(rel, what, name, "A blind index column must be of type bytea.");
}

/*
 * Resolve one of the per-column trigger's columns by name and check it: it
 * must be the next entry of the trigger's column list.
 */
static int
cv_protect_column(Relation rel, Trigger *tg, int *pos, const char *name, const char *what,
				  int kind)
{
	int			attnum = cv_protect_attnum(rel, name, what);

	cv_protect_check_column(rel, attnum, *pos < tg->tgnattr && tg->tgattr[*pos] == attnum,
							name, what, kind);
	(*pos)++;
	return attnum;
}

/* the trigger's state for this statement, set up on its first row */
static CvProtectState *
cv_protect_state(FunctionCallInfo fcinfo, TriggerData *td)
{
	CvProtectState *st = (CvProtectState *) fcinfo->flinfo->fn_extra;
	Trigger    *tg = td->tg_trigger;
	char	  **args = tg->tgargs;
	Relation	rel = td->tg_relation;
	uint64		epoch = CvKeyEpoch();

	if (st == NULL || st->tgoid != tg->tgoid)
	{
		int			pos = 0;

		st = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CvProtectState));
		st->attnum = cv_protect_column(rel, tg, &pos, args[0], "protected column", 0);
		if (args[3][0] != '\0')
		{
			st->ctx_attnum = cv_protect_column(rel, tg, &pos, args[3], "context column", 1);
			st->ctx_type = getBaseType(TupleDescAttr(RelationGetDescr(rel), st->ctx_attnum - 1)->atttypid);
		}
		if (args[4][0] != '\0')
			st->bidx_attnum = cv_protect_column(rel, tg, &pos, args[4], "blind index column", 2);
		if (pos != tg->tgnattr)
			cv_protect_changed(rel, "protection trigger", tg->tgname,
							   "Its column list does not match its arguments.");
		/* a sixth argument (0.2.0): the index is bound to the column and truncated */
		st->bidx_bits = CV_MAC_LEN * 8;
		if (tg->tgnargs == 6)
		{
			st->bidx_bits = pg_strtoint32(args[5]);
			st->bidx_binding = args[2];
		}
		st->tgoid = tg->tgoid;
		fcinfo->flinfo->fn_extra = st;
	}
	/* keys: looked up once per statement, valid for all of it */
	if (st->epoch != epoch || st->key == NULL)
	{
		st->key = CvActiveKeyByName(args[1]);
		st->bkey = st->bidx_attnum ? CvBlindIndexKeyByName(args[1]) : NULL;
		st->epoch = epoch;
	}
	return st;
}

/* a row with a protected value and a NULL context: refused */
static void
cv_protect_null_context(Relation rel, int ctx_attnum)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("context column \"%s\" of table \"%s\" must not be null in a row with protected values",
					NameStr(TupleDescAttr(RelationGetDescr(rel), ctx_attnum - 1)->attname),
					RelationGetRelationName(rel)),
			 errhint("Give the context column a value (for example the customer id) before the protected column.")));
}

/*
 * The plaintext of a stored value that stays but whose row context changed,
 * opened under its old context to be sealed under the new one (palloc'd,
 * the caller wipes it); NULL when its key was destroyed (nothing to re-bind).
 */
static char *
cv_protect_open_to_rebind(text *t, const char *col, const char *oldctx, int oldctxlen,
						  size_t *ptlen)
{
	CvEnvelope	env;
	char	   *pt;

	if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("protected column \"%s\" holds a value that is not a ciphertext envelope",
						col)));
	pt = palloc(env.ciphertext_len + 1);
	if (!CvOpenValue(&env, oldctx, oldctxlen, CV_OPEN_RESEAL, pt, ptlen))
		return NULL;
	return pt;
}

/*
 * Ciphertext written into a protected column as it is (restore, COPY, a
 * value kept by the application): opened into check (room for
 * env->ciphertext_len bytes, the caller wipes it) only to verify that it
 * belongs to this column and row.  Returns CV_OPEN_OK, or CV_OPEN_DESTROYED
 * when its key was shredded (kept as it is, it reads as NULL); anything else
 * is refused.
 */
static int
cv_protect_check_written(const CvEnvelope *env, const char *col, const char *ctx, int ctxlen,
						 char *check, size_t *checklen)
{
	int			rc = CvOpenEnvelope(env, ctx, ctxlen, CV_OPEN_VERIFY, true, check, checklen);

	if (rc == CV_OPEN_FAILED || rc == CV_OPEN_NO_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ciphertext stored into protected column \"%s\" does not authenticate for this column and row",
						col),
				 errdetail(rc == CV_OPEN_NO_KEY
						   ? "The data key it names does not exist."
						   : "It was altered, forged, or belongs to another column or row."),
				 errhint("Store plaintext; the column encrypts it.")));
	return rc;
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
			cv_protect_null_context(rel, st->ctx_attnum);
		CvAppendRowContext(&buf, st->ctx_type, d);
	}
	*len = buf.len;
	return buf.data;
}

/* the blind index of a plaintext for this column */
static Datum
cv_protect_blind_index(CvProtectState *st, const char *pt, size_t ptlen)
{
	return PointerGetDatum(CvBlindIndex(st->bkey, st->bidx_binding, st->bidx_bits, pt, ptlen));
}

/* ---------- the per-table trigger (0.5.0) ---------- */

/*
 * From 0.5.0 a protected table has one trigger, cv_protect, BEFORE INSERT OR
 * UPDATE FOR EACH ROW WHEN (ROW(NEW.<every protected, context and blind
 * index column>) IS NULL OR true).  It fires on every UPDATE and compares
 * those columns of NEW with OLD, so an owner's BEFORE trigger that changed
 * one of them is seen even when the statement set none.  The WHEN clause is
 * always true; it names the columns as the per-column triggers' UPDATE OF
 * list did (PostgreSQL keeps it through renames and maps it onto partitions,
 * so the trigger checks that each column it finds by name is still one it
 * was made on; it also keeps their types and ties the trigger to them), and
 * its arguments are
 * CV_PROTECT_TABLE_MARK followed by six per protected column, as in the
 * per-column trigger: column, key name, binding, context column ('' for
 * none), blind index column ('' for none), blind index bits ('' for a
 * column protected by 0.1.0, whose blind index is full-length and unbound).  It is made
 * from the protected_columns registry, by the extension's owner only
 * (protect_column, the sql_drop event trigger after a column drop took it
 * away, the update from 0.4.0).  The whole row is sealed in one tuple
 * re-form.
 */
#define CV_PROTECT_TABLE_MARK	"cv_protect_table"
#define CV_PROTECT_GROUP		6
/* the per-table trigger's buffer for the text envelopes of a row */
#define CV_PROTECT_OUTBUF		8192

/* one protected column of a per-table trigger */
typedef struct CvProtectCol
{
	int			attnum;			/* the protected column */
	int			ctx_attnum;		/* 0 when there is no context column */
	int			bidx_attnum;	/* 0 when there is no blind index */
	int			bidx_bits;
	Oid			ctx_type;		/* base type of the context column */
	const char *name;
	const char *key_name;
	const char *binding;
	int			binding_len;
	const char *bidx_binding;	/* NULL: a 0.1.0 column's unbound index */
	CvKey	   *key;			/* active version: seals */
	CvKey	   *bkey;			/* first version: blind index */
} CvProtectCol;

/* what a per-table trigger needs, resolved on its first row in a statement */
typedef struct CvProtectTable
{
	Oid			tgoid;
	Oid			relid;
	uint64		epoch;			/* key epoch the keys belong to */
	int			ncols;
	int			natts;
	bool		keys_ready;		/* keys looked up under epoch */
	int			nwatch;			/* columns an UPDATE is checked for */
	int		   *watch;			/* their attribute numbers */
	Datum	   *values;			/* the new row, deformed */
	bool	   *nulls;
	Datum	   *oldvalues;		/* the old row (UPDATE), deformed */
	bool	   *oldnulls;
	StringInfoData aad;			/* row context of the value at hand */
	StringInfoData oldaad;		/* the same in the old row (UPDATE) */
	uint8	   *sealbuf;		/* binary envelope being sealed */
	size_t		sealcap;
	StringInfoData ctxtext;		/* the new row's context text (ctx_done's) */
	char	   *outbuf;			/* the text envelopes of the row at hand (made
								 * on the first value sealed) */
	size_t		outused;
	MemoryContext mcxt;			/* where this state lives (the call site's) */
	CvProtectCol cols[FLEXIBLE_ARRAY_MEMBER];
} CvProtectTable;

/* whether a trigger's arguments are those of the per-table form */
static bool
cv_protect_is_table_form(Trigger *tg)
{
	return tg->tgnargs > CV_PROTECT_GROUP &&
		(tg->tgnargs - 1) % CV_PROTECT_GROUP == 0 &&
		strcmp(tg->tgargs[0], CV_PROTECT_TABLE_MARK) == 0;
}

/*
 * The columns a per-table trigger was created on, as a set of attribute
 * numbers: those its WHEN clause names as NEW.<column> (0.5.0), and those of
 * an UPDATE OF list (earlier builds of 0.5.0).  PostgreSQL keeps both through
 * renames and dumps and maps them onto partitions.
 */
static Bitmapset *
cv_protect_table_anchors(Trigger *tg)
{
	Bitmapset  *vars = NULL;
	Bitmapset  *res = NULL;
	int			k;

	if (tg->tgqual != NULL)
		pull_varattnos(stringToNode(tg->tgqual), PRS2_NEW_VARNO, &vars);
	k = -1;
	while ((k = bms_next_member(vars, k)) >= 0)
		if (k + FirstLowInvalidHeapAttributeNumber > 0)
			res = bms_add_member(res, k + FirstLowInvalidHeapAttributeNumber);
	for (k = 0; k < tg->tgnattr; k++)
		res = bms_add_member(res, tg->tgattr[k]);
	return res;
}

/*
 * Resolve a column of the per-table trigger by name and check it: it must be
 * one of the columns the trigger was created on (anchors).
 */
static int
cv_protect_table_column(Relation rel, Trigger *tg, Bitmapset *anchors, const char *name,
						const char *what, int kind)
{
	int			attnum = cv_protect_attnum(rel, name, what);

	cv_protect_check_column(rel, attnum, bms_is_member(attnum, anchors), name, what, kind);
	return attnum;
}

/* the per-table trigger's state for this statement, set up on its first row */
static CvProtectTable *
cv_protect_table_state(FunctionCallInfo fcinfo, TriggerData *td)
{
	CvProtectTable *st = (CvProtectTable *) fcinfo->flinfo->fn_extra;
	Trigger    *tg = td->tg_trigger;
	Relation	rel = td->tg_relation;
	int			i,
				j;

	if (st == NULL || st->tgoid != tg->tgoid || st->relid != RelationGetRelid(rel))
	{
		int			ncols = (tg->tgnargs - 1) / CV_PROTECT_GROUP;
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		Bitmapset  *anchors = cv_protect_table_anchors(tg);
		Bitmapset  *watched = NULL;

		st = palloc0(offsetof(CvProtectTable, cols) + ncols * sizeof(CvProtectCol));
		st->ncols = ncols;
		for (i = 0; i < ncols; i++)
		{
			char	  **a = tg->tgargs + 1 + i * CV_PROTECT_GROUP;
			CvProtectCol *c = &st->cols[i];

			c->name = pstrdup(a[0]);
			c->key_name = pstrdup(a[1]);
			c->binding = pstrdup(a[2]);
			c->binding_len = strlen(a[2]);
			c->attnum = cv_protect_table_column(rel, tg, anchors, a[0], "protected column", 0);
			watched = bms_add_member(watched, c->attnum);
			if (a[3][0] != '\0')
			{
				c->ctx_attnum = cv_protect_table_column(rel, tg, anchors, a[3], "context column", 1);
				c->ctx_type = getBaseType(TupleDescAttr(RelationGetDescr(rel), c->ctx_attnum - 1)->atttypid);
				watched = bms_add_member(watched, c->ctx_attnum);
			}
			if (a[4][0] != '\0')
			{
				c->bidx_attnum = cv_protect_table_column(rel, tg, anchors, a[4], "blind index column", 2);
				watched = bms_add_member(watched, c->bidx_attnum);
			}
			/* bits '' (a column protected by 0.1.0): full length, unbound */
			c->bidx_bits = CV_MAC_LEN * 8;
			if (a[5][0] != '\0')
			{
				c->bidx_bits = pg_strtoint32(a[5]);
				c->bidx_binding = c->binding;
			}
			if (c->bidx_bits < 1 || c->bidx_bits > CV_MAC_LEN * 8)
				cv_protect_changed(rel, "protection trigger", tg->tgname,
								   "Its blind index bits are out of range.");
		}
		/*
		 * No column twice, and no protected column as the context or the
		 * blind index of another: every context is read from the row as
		 * written, before anything in it is sealed.
		 */
		for (i = 0; i < ncols; i++)
			for (j = 0; j < ncols; j++)
			{
				CvProtectCol *a = &st->cols[i];
				CvProtectCol *b = &st->cols[j];

				if ((i != j && a->attnum == b->attnum) ||
					a->ctx_attnum == b->attnum || a->bidx_attnum == b->attnum ||
					(i != j && a->bidx_attnum != 0 && a->bidx_attnum == b->bidx_attnum) ||
					(a->bidx_attnum != 0 && a->bidx_attnum == b->ctx_attnum))
					cv_protect_changed(rel, "protected column", a->name,
									   "A column is protected twice, or serves as the context or blind index of another protected column.");
			}
		/* and the columns it was created on are those and nothing else */
		if (!bms_equal(anchors, watched))
			cv_protect_changed(rel, "protection trigger", tg->tgname,
							   "Its column list does not match its arguments.");
		st->nwatch = bms_num_members(watched);
		st->watch = palloc(st->nwatch * sizeof(int));
		i = 0;
		j = -1;
		while ((j = bms_next_member(watched, j)) >= 0)
			st->watch[i++] = j;
		st->natts = RelationGetDescr(rel)->natts;
		st->values = palloc(st->natts * sizeof(Datum));
		st->nulls = palloc(st->natts * sizeof(bool));
		st->oldvalues = palloc(st->natts * sizeof(Datum));
		st->oldnulls = palloc(st->natts * sizeof(bool));
		initStringInfo(&st->aad);
		initStringInfo(&st->oldaad);
		st->tgoid = tg->tgoid;
		st->relid = RelationGetRelid(rel);
		st->mcxt = fcinfo->flinfo->fn_mcxt;
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = st;
	}
	return st;
}

/*
 * The keys of a per-table trigger: looked up once per statement, and only
 * when a row has something to seal or check (an UPDATE that changes none of
 * the trigger's columns needs no key).
 */
static void
cv_protect_table_keys(CvProtectTable *st)
{
	uint64		epoch = CvKeyEpoch();
	int			i;

	if (!st->keys_ready || st->epoch != epoch)
	{
		st->keys_ready = false;
		for (i = 0; i < st->ncols; i++)
		{
			CvProtectCol *c = &st->cols[i];

			if (i > 0 && strcmp(c->key_name, st->cols[i - 1].key_name) == 0)
				c->key = st->cols[i - 1].key;
			else
				c->key = CvActiveKeyByName(c->key_name);
			c->bkey = c->bidx_attnum ? CvBlindIndexKeyByName(c->key_name) : NULL;
		}
		st->epoch = epoch;
		st->keys_ready = true;
	}
}

/*
 * The new row's context of a protected value into st->aad: binding ||
 * context value text, the text made once per row and context column
 * (*ctx_done: the context column whose text st->ctxtext holds, 0 none yet).
 * No protected or blind index column is a context column, so sealing the
 * row's values does not change it.
 */
static void
cv_protect_table_new_aad(CvProtectTable *st, CvProtectCol *c, Relation rel, int *ctx_done)
{
	StringInfo	ctx = &st->ctxtext;

	resetStringInfo(&st->aad);
	if (c->ctx_attnum == 0)
	{
		appendBinaryStringInfo(&st->aad, c->binding, c->binding_len);
		return;
	}
	if (*ctx_done != c->ctx_attnum)
	{
		if (st->nulls[c->ctx_attnum - 1])
			cv_protect_null_context(rel, c->ctx_attnum);
		if (ctx->data == NULL)
		{
			/*
			 * made on the first row that needs it: a state is made for
			 * every partition a statement reaches
			 */
			MemoryContext old = MemoryContextSwitchTo(st->mcxt);

			initStringInfo(ctx);
			MemoryContextSwitchTo(old);
		}
		resetStringInfo(ctx);
		CvAppendRowContext(ctx, c->ctx_type, st->values[c->ctx_attnum - 1]);
		*ctx_done = c->ctx_attnum;
	}
	/* (one enlargement for both parts) */
	enlargeStringInfo(&st->aad, c->binding_len + ctx->len);
	memcpy(st->aad.data, c->binding, c->binding_len);
	memcpy(st->aad.data + c->binding_len, ctx->data, ctx->len);
	st->aad.len = c->binding_len + ctx->len;
	st->aad.data[st->aad.len] = '\0';
}

/* the row context of a protected value into buf: binding || context value text */
static void
cv_protect_table_aad(CvProtectCol *c, Relation rel, StringInfo buf, Datum ctxval, bool ctxnull)
{
	resetStringInfo(buf);
	appendBinaryStringInfo(buf, c->binding, c->binding_len);
	if (c->ctx_attnum == 0)
		return;
	if (ctxnull)
		cv_protect_null_context(rel, c->ctx_attnum);
	CvAppendRowContext(buf, c->ctx_type, ctxval);
}

/*
 * Seal a plaintext for a column into a text envelope datum: the binary form
 * goes into the statement's scratch buffer (no bytea of its own), then once
 * into its text form.
 */
static Datum
cv_protect_table_seal(CvProtectTable *st, CvProtectCol *c, const char *pt, size_t ptlen)
{
	size_t		len = CvSealedLen(c->key, ptlen);
	text	   *res;
	size_t		n;

	if (len > st->sealcap)
	{
		size_t		cap = Max(len, 1024);

		if (st->sealbuf)
			pfree(st->sealbuf);
		st->sealbuf = MemoryContextAlloc(st->mcxt, cap);
		st->sealcap = cap;
	}
	CvSealInto(c->key, CV_ENV_TYPE_TEXT, pt, ptlen, st->aad.data, st->aad.len, st->sealbuf);

	/*
	 * The text goes into the statement's row buffer while it has room (it
	 * only has to live until the row is re-formed, before the next row),
	 * else into memory of its own.
	 */
	n = MAXALIGN(VARHDRSZ + cv_envelope_text_len(len));
	if (st->outbuf == NULL)
		st->outbuf = MemoryContextAlloc(st->mcxt, CV_PROTECT_OUTBUF);
	if (n <= CV_PROTECT_OUTBUF - st->outused)
	{
		res = (text *) (st->outbuf + st->outused);
		st->outused += n;
	}
	else
		res = palloc(n);
	n = cv_envelope_to_text(st->sealbuf, len, VARDATA(res));
	SET_VARSIZE(res, VARHDRSZ + n);
	return PointerGetDatum(res);
}

/*
 * Whether a stored value of a protected column starts as an envelope does
 * (its prefix only: the column's CHECK holds every value to the whole
 * form).  A value that does not is a plaintext left by a conversion in
 * progress (protect_column on a Citus table seals the rows by updating them).
 */
static bool
cv_protect_looks_sealed(Datum value)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(value);
	bool		res;

	if (VARATT_IS_EXTENDED(v) && !VARATT_IS_SHORT(v))
	{
		text	   *head = DatumGetTextPSlice(value, 0, CV_ENV_TEXT_PREFIX_LEN);

		res = VARSIZE_ANY_EXHDR(head) == CV_ENV_TEXT_PREFIX_LEN &&
			memcmp(VARDATA_ANY(head), CV_ENV_TEXT_PREFIX, CV_ENV_TEXT_PREFIX_LEN) == 0;
		pfree(head);
		return res;
	}
	return VARSIZE_ANY_EXHDR(v) >= CV_ENV_TEXT_PREFIX_LEN &&
		memcmp(VARDATA_ANY(v), CV_ENV_TEXT_PREFIX, CV_ENV_TEXT_PREFIX_LEN) == 0;
}

/* the per-table trigger: every protected column of the row, one tuple re-form */
static Datum
cv_protect_table_trigger(FunctionCallInfo fcinfo, TriggerData *td)
{
	CvProtectTable *st = cv_protect_table_state(fcinfo, td);
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	HeapTuple	res;
	bool		changed = false;
	int			ctx_done = 0;
	int			i;

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		newtup = td->tg_newtuple;
		oldtup = td->tg_trigtuple;
	}
	else
		newtup = td->tg_trigtuple;
	if (desc->natts != st->natts)
		elog(ERROR, "customer_vault: the row type of table \"%s\" changed during a statement",
			 RelationGetRelationName(rel));
	heap_deform_tuple(newtup, desc, st->values, st->nulls);

	/*
	 * UPDATE: the trigger fires on every one (an owner's BEFORE trigger that
	 * ran before it may have changed a column the statement does not set);
	 * a row whose protected, context and blind index columns are all as they
	 * were (the same image) is left as it is.
	 */
	if (oldtup != NULL)
	{
		heap_deform_tuple(oldtup, desc, st->oldvalues, st->oldnulls);
		for (i = 0; i < st->nwatch; i++)
		{
			int			a = st->watch[i] - 1;
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (st->nulls[a] != st->oldnulls[a] ||
				(!st->nulls[a] &&
				 !datumIsEqual(st->values[a], st->oldvalues[a], att->attbyval, att->attlen)))
				break;
		}
		/* ... unless it holds a plaintext (a table being converted) */
		if (i == st->nwatch)
		{
			for (i = 0; i < st->ncols; i++)
				if (!st->oldnulls[st->cols[i].attnum - 1] &&
					!cv_protect_looks_sealed(st->oldvalues[st->cols[i].attnum - 1]))
					break;
			if (i == st->ncols)
				return PointerGetDatum(newtup);
		}
	}
	cv_protect_table_keys(st);
	st->outused = 0;

	for (i = 0; i < st->ncols; i++)
	{
		CvProtectCol *c = &st->cols[i];
		int			a = c->attnum - 1;
		int			b = c->bidx_attnum - 1;
		text	   *t;
		CvEnvelope	env;
		char	   *pt;
		size_t		ptlen;
		bool		wipe_pt = false;

		if (st->nulls[a])
		{
			/* no value, no blind index */
			if (c->bidx_attnum != 0 && !st->nulls[b])
			{
				st->values[b] = (Datum) 0;
				st->nulls[b] = true;
				changed = true;
			}
			continue;
		}
		cv_protect_table_new_aad(st, c, rel, &ctx_done);
		t = DatumGetTextPP(st->values[a]);

		if (oldtup != NULL)
		{
			/*
			 * An unchanged plaintext (only in a table protect_column is
			 * converting: on a Citus table it seals the existing rows with
			 * UPDATE ... SET col = col, this trigger on every shard) is sealed
			 * like a new one; an unchanged envelope is kept.
			 */
			if (!st->oldnulls[a] && datumIsEqual(st->oldvalues[a], st->values[a], false, -1) &&
				cv_envelope_text_check(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
									   CV_ENV_TYPE_TEXT) == CV_ENV_OK)
			{
				cv_protect_table_aad(c, rel, &st->oldaad,
									 c->ctx_attnum ? st->oldvalues[c->ctx_attnum - 1] : (Datum) 0,
									 c->ctx_attnum ? st->oldnulls[c->ctx_attnum - 1] : false);
				/* unchanged value under an unchanged context: kept as it is */
				if (st->oldaad.len == st->aad.len &&
					memcmp(st->oldaad.data, st->aad.data, st->aad.len) == 0)
				{
					/* the blind index follows the value, not the statement */
					if (c->bidx_attnum != 0)
					{
						st->values[b] = st->oldvalues[b];
						st->nulls[b] = st->oldnulls[b];
						changed = true;
					}
					continue;
				}
				/* the row's context changed: re-bind the value to the new one */
				pt = cv_protect_open_to_rebind(t, c->name, st->oldaad.data, st->oldaad.len, &ptlen);
				if (pt == NULL)
					continue;	/* key destroyed: nothing to re-bind */
				wipe_pt = true;
				goto seal;
			}
		}

		if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) != NULL)
		{
			/* ciphertext arriving as it is: keep it only if it belongs here */
			char	   *check = palloc(env.ciphertext_len + 1);
			size_t		checklen;
			int			rc = cv_protect_check_written(&env, c->name, st->aad.data, st->aad.len,
													  check, &checklen);

			if (c->bidx_attnum != 0)
			{
				if (rc == CV_OPEN_DESTROYED)
				{
					/* under a destroyed key: kept as it is, it reads as NULL */
					st->values[b] = (Datum) 0;
					st->nulls[b] = true;
				}
				else
				{
					st->values[b] = PointerGetDatum(CvBlindIndex(c->bkey, c->bidx_binding, c->bidx_bits,
																 check, checklen));
					st->nulls[b] = false;
				}
				changed = true;
			}
			cv_wipe(check, env.ciphertext_len);
			continue;
		}

		/* plaintext: seal it before the row is written */
		pt = VARDATA_ANY(t);
		ptlen = VARSIZE_ANY_EXHDR(t);

seal:
		st->values[a] = cv_protect_table_seal(st, c, pt, ptlen);
		if (c->bidx_attnum != 0)
		{
			st->values[b] = PointerGetDatum(CvBlindIndex(c->bkey, c->bidx_binding, c->bidx_bits, pt, ptlen));
			st->nulls[b] = false;
		}
		if (wipe_pt)
			cv_wipe(pt, ptlen);
		changed = true;
	}

	if (!changed)
		return PointerGetDatum(newtup);
	/* one re-form of the row, keeping its identity as heap_modify_tuple does */
	res = heap_form_tuple(desc, st->values, st->nulls);
	res->t_data->t_ctid = newtup->t_data->t_ctid;
	res->t_self = newtup->t_self;
	res->t_tableOid = newtup->t_tableOid;
	return PointerGetDatum(res);
}

/*
 * BEFORE INSERT OR UPDATE ROW trigger of a protected column.  Arguments:
 * column, key name, binding, context column ('' for none), blind index
 * column ('' for none), and from 0.2.0 the blind index bits (the index is
 * then bound to the column's binding).  Plaintext is sealed before the row
 * is written; ciphertext arriving as it is (restore, COPY) is kept only when
 * it authenticates for this column and row (or its key was shredded).
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
		(td->tg_trigger->tgnargs != 5 && td->tg_trigger->tgnargs != 6 &&
		 !cv_protect_is_table_form(td->tg_trigger)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_vault protection trigger must fire BEFORE INSERT OR UPDATE FOR EACH ROW with five or six arguments, or the per-table arguments")));
	/* 0.5.0: one trigger for every protected column of the table */
	if (td->tg_trigger->tgnargs > 6)
		return cv_protect_table_trigger(fcinfo, td);

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
			pt = cv_protect_open_to_rebind(t, args[0], oldctx, oldctxlen, &ptlen);
			if (pt == NULL)
				return PointerGetDatum(newtup);	/* key destroyed: nothing to re-bind */
			wipe_pt = true;
			goto seal;
		}
	}

	if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) != NULL)
	{
		/* ciphertext arriving as it is: keep it only if it belongs here */
		char	   *check = palloc(env.ciphertext_len + 1);
		size_t		checklen;
		int			rc = cv_protect_check_written(&env, args[0], ctx, ctxlen, check, &checklen);

		if (st->bidx_attnum == 0)
		{
			cv_wipe(check, env.ciphertext_len);
			return PointerGetDatum(newtup);
		}
		repl_cols[0] = st->bidx_attnum;
		if (rc == CV_OPEN_DESTROYED)
		{
			/* under a destroyed key: kept as it is, it reads as NULL */
			repl_values[0] = (Datum) 0;
			repl_nulls[0] = true;
		}
		else
			repl_values[0] = cv_protect_blind_index(st, check, checklen);
		cv_wipe(check, env.ciphertext_len);
		return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 1, repl_cols,
														 repl_values, repl_nulls));
	}

	/* plaintext: seal it before the row is written */
	pt = VARDATA_ANY(t);
	ptlen = VARSIZE_ANY_EXHDR(t);

seal:
	repl_cols[nrepl] = st->attnum;
	repl_values[nrepl] = PointerGetDatum(CvEnvelopeAsText(CvSealValue(st->key, CV_ENV_TYPE_TEXT,
																	   pt, ptlen, ctx, ctxlen)));
	nrepl++;
	if (st->bidx_attnum != 0)
	{
		repl_cols[nrepl] = st->bidx_attnum;
		repl_values[nrepl] = cv_protect_blind_index(st, pt, ptlen);
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
 * value that already is an envelope is kept only when it authenticates for
 * this column and row (or its key was shredded); anything else, a forged
 * envelope included, is plaintext and sealed.
 */
Datum
cv_seal_column(PG_FUNCTION_ARGS)
{
	text	   *pt;
	text	   *ctx;
	char	   *name;
	CvEnvelope	env;

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
	if (CvTextToEnvelope(VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt), &env) != NULL)
	{
		char	   *check = palloc(env.ciphertext_len + 1);
		size_t		checklen;
		int			rc = CvOpenEnvelope(&env, VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx),
										CV_OPEN_VERIFY, true, check, &checklen);

		cv_wipe(check, env.ciphertext_len);
		if (rc == CV_OPEN_OK || rc == CV_OPEN_DESTROYED)
			PG_RETURN_TEXT_P(pt);
	}
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	PG_RETURN_TEXT_P(CvEnvelopeAsText(CvSealValue(CvActiveKeyByName(name), CV_ENV_TYPE_TEXT,
												  VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt),
												  VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx))));
}

/*
 * _open_column(value, context): the plaintext of a protected column's value,
 * what <table>_decrypted shows.  Decodes the text form straight into the
 * envelope, in a buffer kept by the call site (no text -> encrypted_text I/O
 * round trip, no allocation but the result); NULL when the key was shredded.
 */
Datum
cv_open_column(PG_FUNCTION_ARGS)
{
	text	   *t;
	text	   *ctx;
	CvEnvelope	env;
	text	   *res;
	size_t		ptlen;
	size_t		need;
	CvOpenMemo *m = (CvOpenMemo *) fcinfo->flinfo->fn_extra;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the context of a protected value must not be null")));
	t = PG_GETARG_TEXT_PP(0);
	ctx = PG_GETARG_TEXT_PP(1);
	/* decoded into the call site's buffer, grown as needed: no palloc per row */
	need = cv_base64_max_decoded_len(VARSIZE_ANY_EXHDR(t)) + 1;
	if (m == NULL || m->cap < need)
	{
		if (m == NULL)
			m = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CvOpenMemo));
		else if (m->buf)
			pfree(m->buf);
		m->cap = Max(need, 512);
		m->buf = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, m->cap);
		fcinfo->flinfo->fn_extra = m;
	}
	if (!CvTextToEnvelopeBuf(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env, m->buf))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("protected column holds a value that is not a ciphertext envelope")));
	res = palloc(VARHDRSZ + env.ciphertext_len);
	if (!CvOpenValue(&env, VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx), CV_OPEN_READ,
					 VARDATA(res), &ptlen))
		PG_RETURN_NULL();
	SET_VARSIZE(res, VARHDRSZ + ptlen);
	PG_RETURN_TEXT_P(res);
}
