/*-------------------------------------------------------------------------
 * blind.c
 *		Blind indexes as a read right, and the objects of a protected column
 *		that only the extension's owner may define.
 *
 * A blind index is a deterministic MAC: whoever can compute one for a
 * guess and compare it with stored ones reads the column.  So:
 *  - the blind index of a column protected by 0.2.0 is bound to the column
 *    (HMAC over a NUL byte, the column's binding and the plaintext; text
 *    never holds a NUL, so it cannot collide with the unbound form of
 *    0.1.0 columns and of blind_index(plaintext, key_name)); a guess written
 *    into one protected column says nothing about another one;
 *  - it may be truncated to a number of bits, so that one index value
 *    stands for many plaintexts of a low-entropy column;
 *  - column_blind_index() (readers) computes it for a guess;
 *    _blind_index_rewrite() does the same for protect_column's rewrite and
 *    only for the table's owner (who is trusted like a reader anyway);
 *  - lookup() gives writers an equality search that returns the context
 *    column's values of matching rows only, never an index value, and logs
 *    every call in blind_index_lookups.
 *
 * The registry row, the protect trigger and the <table>_decrypted view are
 * made by the extension's owner (a role nobody logs in as), never by the
 * admin who called protect_column: the caller must own the table, then the
 * work runs as the extension's owner inside a security-restricted
 * operation.  An event trigger refuses any other DDL on those views.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/* a protected column's blind-index settings, read from protected_columns */
typedef struct CvBlindColumn
{
	bool		valid;
	Oid			relid;
	NameData	column;
	NameData	nsp;
	NameData	rel;
	NameData	key_name;
	NameData	ctx_column;		/* empty when there is none */
	NameData	bidx_column;
	bool		bound;			/* false: a 0.1.0 column (unbound index) */
	char		binding[4 * NAMEDATALEN + 16];
	int			bits;
} CvBlindColumn;

/*
 * Settings read in this transaction (a lookup loop reads the registry once);
 * forgotten at its end, so a later transaction sees registry changes.
 */
#define CV_BLIND_CACHE_SIZE 8
static CvBlindColumn cv_blind_cache[CV_BLIND_CACHE_SIZE];
static int	cv_blind_cache_next = 0;
static bool cv_blind_callback_registered = false;

/* set while the extension's owner (re)defines a decrypted view */
static bool cv_view_refresh_active = false;

/*
 * The column _register_protection registered in this transaction, which
 * _finish_protection (and only it, once) may complete: the protect trigger
 * is made for a row this backend has just written, never for a registry row
 * found lying around (e.g. one forged under 0.1.0).
 */
static Oid	cv_pending_relid = InvalidOid;
static NameData cv_pending_column;

PG_FUNCTION_INFO_V1(cv_blind_index_bits);
PG_FUNCTION_INFO_V1(cv_column_blind_index);
PG_FUNCTION_INFO_V1(cv_blind_index_rewrite);
PG_FUNCTION_INFO_V1(cv_lookup);
PG_FUNCTION_INFO_V1(cv_register_protection);
PG_FUNCTION_INFO_V1(cv_finish_protection);
PG_FUNCTION_INFO_V1(cv_refresh_decrypted_view);
PG_FUNCTION_INFO_V1(cv_view_refresh_is_active);

/*
 * The blind index of a plaintext: HMAC-SHA-256 under the key's blind-index
 * subkey, over the plaintext (binding NULL) or over a NUL byte, the
 * binding and the plaintext; truncated to its first bits (1-256).
 */
bytea *
CvBlindIndex(CvKey *key, const char *binding, int bits, const char *pt, size_t ptlen)
{
	bytea	   *mac;
	int			nbytes;

	if (bits < 1 || bits > CV_MAC_LEN * 8)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("blind index bits must be between 1 and %d", CV_MAC_LEN * 8)));
	if (binding == NULL)
		mac = CvBlindMac(key, pt, ptlen);
	else
	{
		size_t		blen = strlen(binding);
		char	   *msg = palloc(1 + blen + ptlen);

		msg[0] = '\0';
		memcpy(msg + 1, binding, blen);
		memcpy(msg + 1 + blen, pt, ptlen);
		mac = CvBlindMac(key, msg, 1 + blen + ptlen);
		cv_wipe(msg, 1 + blen + ptlen);
		pfree(msg);
	}
	nbytes = (bits + 7) / 8;
	if (bits % 8 != 0)
		((uint8 *) VARDATA(mac))[nbytes - 1] &= (uint8) (0xFF << (8 - bits % 8));
	SET_VARSIZE(mac, VARHDRSZ + nbytes);
	return mac;
}

/* the extension's owner: the owner of its registry table */
static Oid
cv_extension_owner(void)
{
	Oid			nsp = get_namespace_oid(CV_SCHEMA, false);
	Oid			relid = get_relname_relid("protected_columns", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "customer_vault.protected_columns is missing");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* the owner of a table, or an error when it does not exist */
static Oid
cv_table_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* refuse unless the calling user owns the table (or is a member of its owner) */
static void
cv_require_table_owner(Oid relid)
{
	if (!has_privs_of_role(GetUserId(), cv_table_owner(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid))));
}

/* the caller's user, security context and GUC nest level (cv_become) */
typedef struct CvBecome
{
	Oid			save_uid;
	int			save_sec;
	int			nestlevel;
} CvBecome;

/*
 * act as another role inside a security-restricted operation, with
 * search_path pinned to pg_catalog, pg_temp in a GUC nest level of its own
 * (as CvBecomeTableOwner): the statements run as that role, and the code
 * they reach (a policy's or a domain's functions, the extension's own), must
 * not resolve names through the caller's search_path (MEDIUM-2, review 24)
 */
static void
cv_become(Oid role, CvBecome *b)
{
	GetUserIdAndSecContext(&b->save_uid, &b->save_sec);
	SetUserIdAndSecContext(role, b->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	b->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* back to the caller, its user and its settings (after cv_become) */
static void
cv_unbecome(CvBecome *b)
{
	AtEOXact_GUC(false, b->nestlevel);
	SetUserIdAndSecContext(b->save_uid, b->save_sec);
}

/* copy a name column of an SPI result row (empty when NULL) */
static void
cv_spi_name(HeapTuple row, TupleDesc desc, int col, NameData *out)
{
	char	   *v = SPI_getvalue(row, desc, col);

	namestrcpy(out, v ? v : "");
}

/* forget the settings read by the transaction that ends */
static void
cv_blind_xact_callback(XactEvent event, void *arg)
{
	int			i;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		for (i = 0; i < CV_BLIND_CACHE_SIZE; i++)
			cv_blind_cache[i].valid = false;
		cv_pending_relid = InvalidOid;
	}
}

/* make sure the end of the transaction resets the settings read and the pending protection */
static void
cv_blind_register_callback(void)
{
	if (!cv_blind_callback_registered)
	{
		RegisterXactCallback(cv_blind_xact_callback, NULL);
		cv_blind_callback_registered = true;
	}
}

/*
 * The blind-index settings of a protected column, read as the extension's
 * owner once per transaction: the registry row of that table (by OID, never
 * by name), and the table's current names.
 */
static CvBlindColumn *
cv_blind_column(Oid relid, Name column)
{
	CvBlindColumn *bc;
	CvBecome	as_owner;
	Oid			argtypes[2] = {OIDOID, NAMEOID};
	Datum		args[2];
	HeapTuple	row;
	TupleDesc	desc;
	char	   *v;
	int			i;

	for (i = 0; i < CV_BLIND_CACHE_SIZE; i++)
	{
		bc = &cv_blind_cache[i];
		if (bc->valid && bc->relid == relid && strcmp(NameStr(bc->column), NameStr(*column)) == 0)
			return bc;
	}
	cv_blind_register_callback();
	bc = &cv_blind_cache[cv_blind_cache_next];
	cv_blind_cache_next = (cv_blind_cache_next + 1) % CV_BLIND_CACHE_SIZE;
	memset(bc, 0, sizeof(CvBlindColumn));

	args[0] = ObjectIdGetDatum(relid);
	args[1] = NameGetDatum(column);
	cv_become(cv_extension_owner(), &as_owner);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(
							  "SELECT n.nspname, c.relname, p.key_name, p.context_column,"
							  "       p.blind_index_column, p.binding, p.blind_index_bits"
							  "  FROM customer_vault.protected_columns p"
							  "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) $1"
							  "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
							  " WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.oid"
							  "   AND p.column_name OPERATOR(pg_catalog.=) $2"
							  "   AND p.blind_index_column IS NOT NULL",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read customer_vault.protected_columns");

	/*
	 * A Citus worker evaluating column_blind_index() in a query routed to it
	 * has no registry (protected_columns stays on the coordinator): the
	 * table's protect trigger, which Citus copies to every node's table and
	 * which only the extension's owner can make, names the same key, binding
	 * and bits (_protect_triggers(): only one whose binding is the column's).
	 */
	if (SPI_processed == 0 && CvCitusTable(relid) &&
		SPI_execute_with_args(
							  "SELECT n.nspname, c.relname, t.key_name, t.context_column,"
							  "       t.blind_index_column, t.binding, t.blind_index_bits"
							  "  FROM customer_vault._protect_triggers() t"
							  "  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid"
							  "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
							  " WHERE t.relid OPERATOR(pg_catalog.=) $1 AND t.checks_out"
							  "   AND t.column_name OPERATOR(pg_catalog.=) $2::pg_catalog.text"
							  "   AND t.blind_index_column IS NOT NULL",
							  2, argtypes, args, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "could not read the protect triggers");
	if (SPI_processed != 1)
	{
		char	   *relname = get_rel_name(relid);

		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("column \"%s\" of table %s is not protected with a blind index",
						NameStr(*column), relname ? relname : "?")));
	}
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	bc->relid = relid;
	namestrcpy(&bc->column, NameStr(*column));
	cv_spi_name(row, desc, 1, &bc->nsp);
	cv_spi_name(row, desc, 2, &bc->rel);
	cv_spi_name(row, desc, 3, &bc->key_name);
	cv_spi_name(row, desc, 4, &bc->ctx_column);
	cv_spi_name(row, desc, 5, &bc->bidx_column);
	v = SPI_getvalue(row, desc, 7);
	if (v == NULL)
	{
		/* protected by 0.1.0: full-length, unbound */
		bc->bound = false;
		bc->bits = CV_MAC_LEN * 8;
	}
	else
	{
		bc->bound = true;
		bc->bits = atoi(v);
		strlcpy(bc->binding, SPI_getvalue(row, desc, 6), sizeof(bc->binding));
	}
	SPI_finish();
	cv_unbecome(&as_owner);
	bc->valid = true;
	return bc;
}

/*
 * "t.<distcol> = $n" for lookup()'s distribution value, with the type's own
 * equality and no other, the column bare so that Citus prunes
 * (CvRoutedClause: the statement runs through CvExecuteCheckedOperator).
 * $n is a parameter of the column's own type (cv_lookup reads the value
 * with the type's input function), not a text parameter cast in the
 * statement: "CAST($n AS domain)" of a domain with constraints stays a
 * CoerceToDomain, which the planner never folds into a constant, and Citus
 * prunes only on a constant of the column's type (both queries went to
 * every shard); a parameter of the domain's type is such a constant.
 */
static char *
lookup_route_clause(const char *distcol, Oid disttype, int n, Oid *opr)
{
	return CvRoutedClause(disttype, psprintf("t.%s", distcol), disttype,
						  psprintf("$%d", n), disttype, false, opr);
}

/* the blind index of a plaintext for a protected column */
static bytea *
cv_column_index(CvBlindColumn *bc, text *pt)
{
	CvKey	   *key = CvBlindIndexKeyByName(NameStr(bc->key_name));

	return CvBlindIndex(key, bc->bound ? bc->binding : NULL, bc->bits,
						VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt));
}

/* blind_index(plaintext, key_name, bits): the unbound index truncated to bits */
Datum
cv_blind_index_bits(PG_FUNCTION_ARGS)
{
	text	   *pt = PG_GETARG_TEXT_PP(0);
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		bits = PG_GETARG_INT32(2);

	if (bits < 1 || bits > CV_MAC_LEN * 8)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("blind index bits must be between 1 and %d", CV_MAC_LEN * 8)));
	PG_RETURN_BYTEA_P(CvBlindIndex(CvBlindIndexKeyByName(name), NULL, bits,
								   VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt)));
}

/* column_blind_index(tbl, col, plaintext): what the column's blind index holds for a value */
Datum
cv_column_blind_index(PG_FUNCTION_ARGS)
{
	CvBlindColumn *bc = cv_blind_column(PG_GETARG_OID(0), PG_GETARG_NAME(1));

	PG_RETURN_BYTEA_P(cv_column_index(bc, PG_GETARG_TEXT_PP(2)));
}

/* _blind_index_rewrite(tbl, col, plaintext): the same, for the table's owner only */
Datum
cv_blind_index_rewrite(PG_FUNCTION_ARGS)
{
	CvBlindColumn *bc;

	cv_require_table_owner(PG_GETARG_OID(0));
	bc = cv_blind_column(PG_GETARG_OID(0), PG_GETARG_NAME(1));
	PG_RETURN_BYTEA_P(cv_column_index(bc, PG_GETARG_TEXT_PP(2)));
}

/*
 * lookup(tbl, col, plaintext [, distribution_value]): the context column
 * values (as text) of the
 * rows whose blind index matches, among the rows the caller may see.  The
 * index is compared as the table's owner (the caller need not read the
 * blind-index column, and must not: reading it while writing the column
 * tests guesses), which gives the matching rows (by tableoid and ctid, or by
 * primary key when the caller may not read the whole table); those very
 * rows are then read as the caller (its privileges on the context
 * column and its row-level security), under the same snapshot, so a row the
 * caller cannot see never counts, even when a visible row shares its context
 * value.  Every call is logged in blind_index_lookups and, since that log
 * is rolled back with the caller's transaction, in the server log
 * (LOG_SERVER_ONLY):
 *   customer_vault lookup: role=<role> table=<schema>.<table> column=<column> matches=<n>
 * with identifiers quoted as in SQL; never the plaintext.  With a truncated
 * index the result holds false positives: only a reader can filter them by
 * decrypting.  With a distribution value (any type, cast to the distribution
 * column's type) on a hash-distributed Citus table, both queries keep the
 * rows holding it only, which Citus sends to the one shard holding them.
 */
Datum
cv_lookup(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CvBlindColumn bcopy;
	CvBlindColumn *bc;
	bytea	   *bidx;
	Oid			caller = GetUserId();
	CvBecome	as_owner;
	StringInfoData sql;
	Datum		args[6];
	Oid			types[6];
	ArrayBuildState *first = NULL;
	ArrayBuildState *second = NULL;
	bool		by_ctid;
	char	   *pkcols = NULL;
	uint64		i;
	int64		found = 0;
	Oid			ctxtype;
	char	   *route = NULL;	/* lookup()'s 4th argument as text, if given */
	Oid			routetype = InvalidOid; /* ... its type */
	int			pin_level = 0;	/* the GUC nest level of the caller's routed query */
	Datum		routeval = (Datum) 0;	/* ... as a value of the distribution column's type */
	char	   *distname = NULL;	/* the distribution column, unquoted */
	char	   *distcol = NULL; /* the distribution column, quoted, when routed */
	Oid			disttype = InvalidOid;
	Oid			eqopr = InvalidOid;	/* its equality operator (CvRoutedClause) */
	int			nroute;

	/* its record (blind_index_lookups) is the coordinator's */
	CvRefuseOnCitusWorker("lookup()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and column must not be null")));
	/* a copy: the queries below may evict the cache entry */
	bcopy = *cv_blind_column(PG_GETARG_OID(0), PG_GETARG_NAME(1));
	bc = &bcopy;
	if (NameStr(bc->ctx_column)[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("lookup() needs a context column"),
				 errdetail("It returns the values of the context column of the matching rows."),
				 errhint("Protect the column with a context column (a row identifier such as the customer id).")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	bidx = PG_ARGISNULL(2) ? NULL : cv_column_index(bc, PG_GETARG_TEXT_PP(2));
	ctxtype = get_atttype(bc->relid, get_attnum(bc->relid, NameStr(bc->ctx_column)));
	if (!OidIsValid(ctxtype))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("context column \"%s\" of table %s does not exist",
						NameStr(bc->ctx_column), get_rel_name(bc->relid))));

	/* the distribution value given (lookup's 4th argument), as text */
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 3);
		Oid			outfn;
		bool		varlena;

		if (!OidIsValid(argtype))
			elog(ERROR, "could not determine the type of the distribution value");
		getTypeOutputInfo(argtype, &outfn, &varlena);
		route = OidOutputFunctionCall(outfn, PG_GETARG_DATUM(3));
		routetype = argtype;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	initStringInfo(&sql);

	/*
	 * With a distribution value, both queries below compare the distribution
	 * column with it (cast to the column's type), which Citus prunes to the
	 * one shard holding that value; only for a hash-distributed Citus table.
	 */
	if (route != NULL)
	{
		Oid			distrel = bc->relid;
		bool		isnull;

		if (!CvCitusTable(bc->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table %s is not a Citus table", get_rel_name(bc->relid)),
					 errdetail("lookup()'s distribution value routes the search to one shard of a hash-distributed Citus table."),
					 errhint("Call lookup() with three arguments.")));
		types[0] = OIDOID;
		args[0] = ObjectIdGetDatum(distrel);
		if (SPI_execute_with_args("SELECT a.attname::pg_catalog.text, a.atttypid"
								  "  FROM pg_catalog.pg_dist_partition d, pg_catalog.pg_attribute a"
								  " WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1 AND d.partmethod OPERATOR(pg_catalog.=) 'h'"
								  "   AND a.attrelid OPERATOR(pg_catalog.=) d.logicalrelid"
								  "   AND a.attname OPERATOR(pg_catalog.=) pg_catalog.column_to_column_name(d.logicalrelid, d.partkey)",
								  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the distribution column of table %u", distrel);
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table %s is not hash-distributed", get_rel_name(bc->relid)),
					 errdetail("lookup()'s distribution value routes the search to one shard of a hash-distributed Citus table."),
					 errhint("Call lookup() with three arguments.")));
		distname = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		distcol = pstrdup(quote_identifier(distname));
		disttype = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		/*
		 * A value of the column's type (or of its domain's base type, the
		 * domain's constraints checked) as it is: printed under the caller's
		 * settings and read back, a float8 lost its last digits with
		 * extra_float_digits < 1 (LOOKDATE).  Another type: the value read as
		 * the column's type, as the caller (as CAST(text AS type) would).
		 */
		if (routetype == disttype || routetype == getBaseType(disttype))
		{
			/* (a statement's parameter is no toast pointer: as a Const, detoasted) */
			routeval = get_typlen(routetype) == -1
				? PointerGetDatum(PG_DETOAST_DATUM(PG_GETARG_DATUM(3)))
				: PG_GETARG_DATUM(3);
			if (routetype != disttype)
				domain_check(routeval, false, disttype, NULL, NULL);
		}
		else
		{
			Oid			typinput;
			Oid			typioparam;

			getTypeInputInfo(disttype, &typinput, &typioparam);
			routeval = OidInputFunctionCall(typinput, route, typioparam, -1);
		}
	}

	/*
	 * How the caller's query names the rows the owner's query found: by
	 * (tableoid, ctid) when the caller may read the whole table (system
	 * columns need the table-wide privilege), else by the primary key (the
	 * caller then needs SELECT on its columns).  Either is exact under one
	 * snapshot: both queries are read-only SPI calls, which run under the
	 * calling statement's snapshot.  Without either the caller's query
	 * fails with the same error whether or not a value matched.
	 */
	by_ctid = pg_class_aclcheck(bc->relid, caller, ACL_SELECT) == ACLCHECK_OK;

	/*
	 * A Citus table's rows are in shards on several nodes, whose (tableoid,
	 * ctid) pairs repeat from node to node: named by the primary key only
	 * (which Citus makes hold the distribution column, so the caller's query
	 * goes to the shards of the rows found).
	 */
	if (CvCitusTable(bc->relid))
		by_ctid = false;
	if (!by_ctid)
	{
		/*
		 * With a distribution value both queries hold "distcol = value": the
		 * rows are named by the other columns of the key, so that the
		 * caller's query names the distribution column once (Citus's fast
		 * path routes by it then; with it twice only shard pruning does,
		 * which for a column of a domain with constraints never finds a
		 * constant of the column's type: every shard).  A key of the
		 * distribution column alone: named by it.
		 */
		types[0] = OIDOID;
		args[0] = ObjectIdGetDatum(bc->relid);
		types[1] = TEXTOID;
		args[1] = distname ? CStringGetTextDatum(distname) : (Datum) 0;
		if (SPI_execute_with_args("SELECT COALESCE(pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.n)"
								  "                  FILTER (WHERE a.attname::pg_catalog.text IS DISTINCT FROM $2),"
								  "                pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY k.n))"
								  "  FROM pg_catalog.pg_index i,"
								  "       pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(att, n),"
								  "       pg_catalog.pg_attribute a"
								  " WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisprimary"
								  "   AND a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.att",
								  2, types, args, distname ? NULL : " n", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read the primary key of table %u", bc->relid);
		pkcols = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		if (pkcols == NULL && CvCitusTable(bc->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("lookup() on Citus table %s needs a primary key", get_rel_name(bc->relid)),
					 errdetail("The rows of a Citus table are named by their primary key across the nodes."),
					 errhint("Add a primary key (it holds the distribution column).")));
		if (pkcols == NULL)
			by_ctid = true;
	}

	/* the matching rows, as the table's owner (its own code runs with its rights only) */
	if (bidx != NULL)
	{
		if (by_ctid)
			appendStringInfo(&sql,
							 "SELECT t.tableoid, t.ctid FROM %s.%s t"
							 " WHERE t.%s OPERATOR(pg_catalog.=) $1",
							 quote_identifier(NameStr(bc->nsp)), quote_identifier(NameStr(bc->rel)),
							 quote_identifier(NameStr(bc->bidx_column)));
		else
			appendStringInfo(&sql,
							 "SELECT t.%s::pg_catalog.text, ROW(%s)::pg_catalog.text FROM %s.%s t"
							 " WHERE t.%s OPERATOR(pg_catalog.=) $1 AND t.%s IS NOT NULL",
							 quote_identifier(NameStr(bc->ctx_column)), pkcols,
							 quote_identifier(NameStr(bc->nsp)), quote_identifier(NameStr(bc->rel)),
							 quote_identifier(NameStr(bc->bidx_column)),
							 quote_identifier(NameStr(bc->ctx_column)));
		types[0] = BYTEAOID;
		args[0] = PointerGetDatum(bidx);
		nroute = 0;
		if (distcol != NULL)
		{
			appendStringInfo(&sql, " AND %s", lookup_route_clause(distcol, disttype, 2, &eqopr));
			types[1] = disttype;
			args[1] = routeval;
			nroute = 1;
		}
		cv_become(cv_table_owner(bc->relid), &as_owner);
		/* the distribution value goes to the worker as text (LOOKDATE) */
		if (nroute > 0)
			CvPinOutputSettings();
		if ((nroute > 0 ? CvExecuteCheckedOperator(sql.data, 1 + nroute, types, args, true, 0, 2, eqopr)
			 : SPI_execute_with_args(sql.data, 1, types, args, NULL, true, 0)) != SPI_OK_SELECT)
			elog(ERROR, "lookup query failed");
		cv_unbecome(&as_owner);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull1,
						isnull2;
			Datum		a = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull1);
			Datum		b = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull2);

			if (isnull1 || isnull2)
				continue;
			first = accumArrayResult(first, a, false, by_ctid ? OIDOID : TEXTOID, CurrentMemoryContext);
			second = accumArrayResult(second, b, false, by_ctid ? TIDOID : TEXTOID, CurrentMemoryContext);
		}
	}

	/* of those very rows, the ones the caller may see, as the caller */
	resetStringInfo(&sql);
	if (by_ctid)
		appendStringInfo(&sql,
						 "SELECT DISTINCT t.%s::pg_catalog.text FROM %s.%s t"
						 " WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($2)"
						 "   AND EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) u(o, c)"
						 "                WHERE u.o OPERATOR(pg_catalog.=) t.tableoid"
						 "                  AND u.c OPERATOR(pg_catalog.=) t.ctid)"
						 "   AND t.%s IS NOT NULL",
						 quote_identifier(NameStr(bc->ctx_column)),
						 quote_identifier(NameStr(bc->nsp)), quote_identifier(NameStr(bc->rel)),
						 quote_identifier(NameStr(bc->ctx_column)));
	else
		appendStringInfo(&sql,
						 "SELECT DISTINCT t.%s::pg_catalog.text FROM %s.%s t"
						 " WHERE %s"
						 "   AND ROW(%s)::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2)",
						 quote_identifier(NameStr(bc->ctx_column)),
						 quote_identifier(NameStr(bc->nsp)), quote_identifier(NameStr(bc->rel)),
						 CvOperatorClause(ctxtype, psprintf("t.%s", quote_identifier(NameStr(bc->ctx_column))),
										  ctxtype, psprintf("$1::%s[]", format_type_be_qualified(ctxtype)),
										  ctxtype, true),
						 pkcols);
	types[0] = by_ctid ? OIDARRAYOID : TEXTARRAYOID;
	args[0] = first != NULL ? makeArrayResult(first, CurrentMemoryContext)
		: PointerGetDatum(construct_empty_array(by_ctid ? OIDOID : TEXTOID));
	types[1] = by_ctid ? TIDARRAYOID : TEXTARRAYOID;
	args[1] = second != NULL ? makeArrayResult(second, CurrentMemoryContext)
		: PointerGetDatum(construct_empty_array(by_ctid ? TIDOID : TEXTOID));
	nroute = 0;
	if (distcol != NULL)
	{
		appendStringInfo(&sql, " AND %s", lookup_route_clause(distcol, disttype, 3, &eqopr));
		types[2] = disttype;
		args[2] = routeval;
		nroute = 1;
	}

	/*
	 * Citus deparses a routed statement's parameters as text with this
	 * session's output settings and the worker reads them with its own:
	 * with the caller's DateStyle 'SQL, DMY' 2 January went out as 02/01 and
	 * the worker read 1 February, with extra_float_digits -3 a float8 went
	 * out rounded (LOOKDATE).  Both routed statements run with the output
	 * settings pinned (the owner's in cv_become's nest level, the caller's
	 * in one of its own, the caller's user unchanged), so that a ROW(...)
	 * printed by one and compared by the other prints alike wherever it
	 * is evaluated.
	 */
	if (nroute > 0)
	{
		pin_level = NewGUCNestLevel();
		CvPinOutputSettings();
	}
	if ((nroute > 0 ? CvExecuteCheckedOperator(sql.data, 2 + nroute, types, args, true, 0, 3, eqopr)
		 : SPI_execute_with_args(sql.data, 2, types, args, NULL, true, 0)) != SPI_OK_SELECT)
		elog(ERROR, "lookup query failed");
	if (pin_level > 0)
		AtEOXact_GUC(false, pin_level);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (isnull)
			continue;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &d, &isnull);
		found++;
	}

	/* count the call, as the extension's owner */
	types[0] = OIDOID;
	args[0] = ObjectIdGetDatum(caller);
	types[1] = NAMEOID;
	args[1] = NameGetDatum(&bc->nsp);
	types[2] = NAMEOID;
	args[2] = NameGetDatum(&bc->rel);
	types[3] = NAMEOID;
	args[3] = NameGetDatum(&bc->column);
	types[4] = INT8OID;
	args[4] = Int64GetDatum(found);
	cv_become(cv_extension_owner(), &as_owner);
	if (SPI_execute_with_args("INSERT INTO customer_vault.blind_index_lookups"
							  " (role_id, schema_name, table_name, column_name, found)"
							  " VALUES ($1, $2, $3, $4, $5)",
							  5, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not log the lookup");
	cv_unbecome(&as_owner);
	SPI_finish();

	/*
	 * The same to the server log, which a ROLLBACK does not undo (until the
	 * decrypt audit takes over); identifiers quoted as in SQL, so the line
	 * parses even for names with spaces; no plaintext, no index value.
	 */
	{
		char	   *rolname = GetUserNameFromId(caller, true);

		ereport(LOG_SERVER_ONLY,
				(errmsg("customer_vault lookup: role=%s table=%s.%s column=%s matches=" INT64_FORMAT,
						quote_identifier(rolname ? rolname : "?"),
						quote_identifier(NameStr(bc->nsp)), quote_identifier(NameStr(bc->rel)),
						quote_identifier(NameStr(bc->column)), found),
				 errhidestmt(true),
				 errhidecontext(true)));
	}
	return (Datum) 0;
}

/* run "SELECT <fn>(...)" as the extension's owner, after checking the caller owns tbl */
static void
cv_as_extension_owner(Oid relid, const char *sql, int nargs, Oid *types, Datum *args,
					  const char *nulls)
{
	CvBecome	as_owner;
	bool		save_active = cv_view_refresh_active;

	cv_require_table_owner(relid);
	cv_become(cv_extension_owner(), &as_owner);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	cv_view_refresh_active = true;
	PG_TRY();
	{
		if (SPI_execute_with_args(sql, nargs, types, args, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not run %s", sql);
	}
	PG_FINALLY();
	{
		cv_view_refresh_active = save_active;
	}
	PG_END_TRY();
	SPI_finish();
	cv_unbecome(&as_owner);
}

/*
 * _register_protection(tbl, col, key_name, context_column, blind_index_column,
 * blind_index_bits): records a column about to be protected (the binding is
 * derived from the table's current name, never taken from the caller) and
 * drops an earlier <table>_decrypted view; for the table's owner.
 */
Datum
cv_register_protection(PG_FUNCTION_ARGS)
{
	Oid			types[7] = {REGCLASSOID, NAMEOID, TEXTOID, NAMEOID, NAMEOID, INT4OID, OIDOID};
	Datum		args[7];
	char		nulls[8] = "       ";
	int			i;

	/* the registry and the keys are changed through the coordinator only */
	CvRefuseOnCitusWorker("protect_column()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, column and key name must not be null")));
	for (i = 0; i < 6; i++)
	{
		if (PG_ARGISNULL(i))
		{
			nulls[i] = 'n';
			args[i] = (Datum) 0;
		}
		else
			args[i] = PG_GETARG_DATUM(i);
	}
	args[6] = ObjectIdGetDatum(GetUserId());
	cv_pending_relid = InvalidOid;
	cv_as_extension_owner(PG_GETARG_OID(0),
						  "SELECT customer_vault._register_protection_as_owner($1, $2, $3, $4, $5, $6, $7)",
						  7, types, args, nulls);
	cv_blind_register_callback();
	cv_pending_relid = PG_GETARG_OID(0);
	namestrcpy(&cv_pending_column, NameStr(*PG_GETARG_NAME(1)));
	PG_RETURN_VOID();
}

/*
 * _finish_protection(tbl, col): trigger, statistics, index and view, as the
 * extension's owner; only for the column _register_protection registered
 * in this transaction (protect_column calls both), and only once.
 */
Datum
cv_finish_protection(PG_FUNCTION_ARGS)
{
	Oid			types[3] = {REGCLASSOID, NAMEOID, OIDOID};
	Datum		args[3];

	cv_require_table_owner(PG_GETARG_OID(0));
	if (!OidIsValid(cv_pending_relid) || cv_pending_relid != PG_GETARG_OID(0) ||
		strcmp(NameStr(cv_pending_column), NameStr(*PG_GETARG_NAME(1))) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of table %s is not being protected",
						NameStr(*PG_GETARG_NAME(1)), get_rel_name(PG_GETARG_OID(0))),
				 errhint("Use customer_vault.protect_column().")));
	cv_pending_relid = InvalidOid;
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = ObjectIdGetDatum(GetUserId());
	cv_as_extension_owner(PG_GETARG_OID(0),
						  "SELECT customer_vault._finish_protection_as_owner($1, $2, $3)",
						  3, types, args, NULL);
	PG_RETURN_VOID();
}

/* _refresh_decrypted_view(tbl): (re)creates <table>_decrypted as the extension's owner */
Datum
cv_refresh_decrypted_view(PG_FUNCTION_ARGS)
{
	Oid			types[2] = {REGCLASSOID, OIDOID};
	Datum		args[2];

	args[0] = PG_GETARG_DATUM(0);
	args[1] = ObjectIdGetDatum(GetUserId());
	cv_as_extension_owner(PG_GETARG_OID(0),
						  "SELECT customer_vault._build_decrypted_view($1, $2)",
						  2, types, args, NULL);
	PG_RETURN_VOID();
}

/* _view_refresh_active(): whether the extension itself is (re)defining a decrypted view */
Datum
cv_view_refresh_is_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cv_view_refresh_active);
}
