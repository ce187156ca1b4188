/*-------------------------------------------------------------------------
 * maint.c
 *		Maintenance as the table owner.  The purge, reencrypt and
 *		protect_column's rewrite change tables the caller does not own; the
 *		owner's triggers, rules, defaults, index expressions and policy
 *		functions fire on those changes.  As PostgreSQL does for VACUUM,
 *		ANALYZE and REFRESH MATERIALIZED VIEW, each statement runs as the
 *		table's owner inside a security-restricted operation, in a GUC nest
 *		level of its own (the owner's code cannot change settings for the
 *		caller) with row security off (maintenance sees every row, or fails
 *		with an error when a policy still applies, as under FORCE ROW LEVEL
 *		SECURITY).
 *
 *		The statement is never taken from the caller: cv_maint_run asks the
 *		SQL function customer_vault._maint_sql (extension code) for the pieces
 *		of one kind of maintenance and puts the statement together itself.
 *		The caller must hold the table privilege that kind needs (DELETE for
 *		a purge, UPDATE for reencrypt, ownership for protect_column), so
 *		acting as the owner gives the caller nothing the caller could not do.
 *
 *		The internal functions those statements call (_m_reseal and friends)
 *		are executable by every table owner but work only while such a
 *		statement runs; sealing only under the key of the protect_column in
 *		progress, blind indexes only for the table being rewritten.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/value.h"
#include "parser/parse_oper.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/regproc.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

/* the table whose maintenance statement is running, if any */
static Oid	maint_relid = InvalidOid;

/* the key protect_column's rewrite seals under (NUL: none) */
static char maint_key[NAMEDATALEN * 4];

/* the implementations the gated functions hand over to */
extern PGDLLEXPORT Datum cv_reseal(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum cv_needs_reseal(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum cv_seal_column(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum cv_blind_index_rewrite(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum cv_subject_has_key(PG_FUNCTION_ARGS);

PG_FUNCTION_INFO_V1(cv_maint_run);
PG_FUNCTION_INFO_V1(cv_m_reseal);
PG_FUNCTION_INFO_V1(cv_m_needs_reseal);
PG_FUNCTION_INFO_V1(cv_m_seal_column);
PG_FUNCTION_INFO_V1(cv_m_blind_index_rewrite);
PG_FUNCTION_INFO_V1(cv_m_subject_has_key);

/*
 * SET LOCAL row_security (with citus.propagate_set_commands = 'local', Citus
 * sends it to the workers), keeping the result of the statement run before
 * (SPI_processed, SPI_tuptable: the callers read them after switching back).
 */
static void
cv_citus_row_security(bool on)
{
	uint64		save_processed = SPI_processed;
	SPITupleTable *save_tuptable = SPI_tuptable;

	/*
	 * A connection of its own: the caller may be inside another's SPI
	 * connection (a PL/pgSQL function's) or in none yet; running in the
	 * current one would free or clobber the caller's results.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI to set row_security for the Citus workers");

	/*
	 * Inside a DO block: Citus sends a SET LOCAL to the workers only in what
	 * it takes for a multi-statement transaction (BEGIN, a DO block, a
	 * procedure, or a statement run by a function's executor).  Run as
	 * SPI's utility statement from a plain SELECT (forget_subject() in
	 * autocommit, whose C code the caller's executor runs directly), it
	 * stayed on this node: the shards' statements ran with the owner's
	 * FORCE ROW LEVEL SECURITY policies hiding the subject's rows.
	 */
	if (SPI_execute(on ? "DO $cv$BEGIN SET LOCAL row_security = on; END$cv$"
					: "DO $cv$BEGIN SET LOCAL row_security = off; END$cv$",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not set row_security for the Citus workers");
	SPI_finish();
	SPI_processed = save_processed;
	SPI_tuptable = save_tuptable;
}

/*
 * Citus is loaded in this backend: its citus.propagate_set_commands is
 * defined (not a placeholder any role can make with SET).
 */
bool
CvCitusLoaded(void)
{
	if (GetConfigOption("citus.propagate_set_commands", true, false) == NULL)
		return false;
	return (GetConfigOptionFlags("citus.propagate_set_commands", true) & GUC_CUSTOM_PLACEHOLDER) == 0;
}

/*
 * CvSetSaved: set a setting for the current GUC nest level, as SET LOCAL
 * inside a function with a SET clause does (GUC_ACTION_SAVE: the nest
 * level's end, AtEOXact_GUC, restores the value before), as the session
 * user's setting would be (PGC_USERSET, PGC_S_SESSION).  Nothing to do when
 * the setting already shows that value (IntervalStyle, bytea_output,
 * standard_conforming_strings, lc_monetary usually do): the nest level's end
 * undoes whatever is set inside it all the same, and each set costs its
 * check hook (lc_monetary's calls setlocale twice) and a save and restore.
 */
void
CvSetSaved(const char *name, const char *value)
{
	const char *cur = GetConfigOption(name, true, false);

	if (cur != NULL && strcmp(cur, value) == 0)
		return;
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Act as a table's owner, as PostgreSQL runs VACUUM and REFRESH MATERIALIZED
 * VIEW: security-restricted (the owner's code cannot change the role or
 * leave objects behind), in a GUC nest level of its own (its settings end
 * with the statement), with a pinned search_path and row security off (every
 * row is seen, or a policy that still applies fails the statement), and the
 * output settings pinned (CvPinOutputSettings).  Shared by maintenance
 * (cv_maint_run), erasure (forget.c) and the consent writes (import.c).
 */
void
CvBecomeTableOwner(Oid owner, CvAsTableOwner *sw)
{
	GetUserIdAndSecContext(&sw->save_userid, &sw->save_sec);
	SetUserIdAndSecContext(owner, sw->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sw->nestlevel = NewGUCNestLevel();
	CvSetSaved("search_path", "pg_catalog, pg_temp");
	sw->caller_row_security = row_security;
	sw->citus_set = false;
	CvSetSaved("row_security", "off");
	CvPinOutputSettings();

	/*
	 * On Citus the statement runs on the workers too, per shard, where this
	 * setting does not reach by itself: a FORCE ROW LEVEL SECURITY table's
	 * policies would hide rows there (a purge or protect_column missing rows
	 * silently) instead of failing as here.  SET LOCAL with
	 * citus.propagate_set_commands = 'local' is sent to the transaction's
	 * connections to the workers (and to those it opens later); here it ends
	 * with the nest level, there CvRestoreCaller sets the caller's value back.
	 */
	if (CvCitusLoaded())
	{
		CvSetSaved("citus.propagate_set_commands", "local");
		cv_citus_row_security(false);
		sw->citus_set = true;
	}
}

/*
 * Pin the settings that decide how values are printed as text, in the
 * current GUC nest level (the caller opened one), so that values a statement
 * gives as text (the keys forget_subject passes from parents to children)
 * read back as the same values whatever the caller set, and so that Citus,
 * which deparses a statement's constants and parameters with these settings
 * and sends them to workers that parse them with their own (their default
 * DateStyle 'ISO, MDY'), sends values every node reads alike: with the
 * caller's 'SQL, DMY', 2 January went out as 02/01 and a worker read 1
 * February (a purge deleted rows still inside retention, grant_consent
 * stored another expiry on the workers' copies of consent_state).  String
 * constants too: with standard_conforming_strings off, PostgreSQL's deparse
 * doubles every backslash without an E'' prefix, so 'a\b' reached the
 * workers (which read with it on) as two backslashes: another subject
 * (review24 HIGH-3); and money values are printed per lc_monetary.
 */
void
CvPinOutputSettings(void)
{
	CvSetSaved("extra_float_digits", "3");
	CvSetSaved("DateStyle", "ISO, YMD");
	CvSetSaved("IntervalStyle", "postgres");
	CvSetSaved("bytea_output", "hex");
	CvSetSaved("standard_conforming_strings", "on");
	CvSetSaved("lc_monetary", "C");
}

/* back to the caller and its settings (after CvBecomeTableOwner) */
void
CvRestoreCaller(CvAsTableOwner *sw)
{
	/* the workers: the caller's row_security again */
	if (sw->citus_set)
		cv_citus_row_security(sw->caller_row_security);
	AtEOXact_GUC(false, sw->nestlevel);
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec);
}

/* a text column of the builder's answer, or NULL */
static char *
maint_field(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

/* the caller may do this kind of maintenance on the table itself */
static void
maint_check_privilege(Oid relid, Oid owner, const char *priv)
{
	AclMode		mode;

	if (strcmp(priv, "OWNER") == 0)
	{
		if (!has_privs_of_role(GetUserId(), owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of table %s", get_rel_name(relid))));
		return;
	}
	if (strcmp(priv, "DELETE") == 0)
		mode = ACL_DELETE;
	else if (strcmp(priv, "UPDATE") == 0)
		mode = ACL_UPDATE;
	else if (strcmp(priv, "SELECT") == 0)
		mode = ACL_SELECT;
	else
		elog(ERROR, "unknown maintenance privilege \"%s\"", priv);
	if (pg_class_aclcheck(relid, GetUserId(), mode) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid)),
				 errdetail("Maintenance acts on a table as its owner, for roles with the %s privilege on it.", priv)));
}

/*
 * The distribution column of a hash-distributed Citus table, quoted (for a
 * routed batch); an error for any other table.  Read as the caller.
 */
static char *
maint_citus_distcol(Oid relid)
{
	Oid			argtypes[1] = {REGCLASSOID};
	Datum		args[1];
	char	   *col = NULL;

	args[0] = ObjectIdGetDatum(relid);
	if (OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)) &&
		SPI_execute_with_args("SELECT pg_catalog.column_to_column_name(d.logicalrelid, d.partkey)"
							  " FROM pg_catalog.pg_dist_partition d"
							  " WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1"
							  " AND d.partmethod OPERATOR(pg_catalog.=) 'h'",
							  1, argtypes, args, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		col = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (col == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a routed batch needs a hash-distributed Citus table, not %s", get_rel_name(relid))));
	return pstrdup(quote_identifier(col));
}

/* the default equality operator of a type (btree), or an error */
static Oid
maint_eq_opr(Oid typid)
{
	TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_EQ_OPR);

	if (!OidIsValid(tc->eq_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify an equality operator for type %s", format_type_be(typid))));
	return tc->eq_opr;
}

/* a pseudo-type (anyenum, anyarray, record): no value can be cast to it */
static bool
maint_pseudo_type(Oid typid)
{
	return get_typtype(typid) == TYPTYPE_PSEUDO;
}

/*
 * "lhs OPERATOR(schema.name) rhs", or with any "lhs OPERATOR(schema.name)
 * ANY (rhs)" (rhs an array, rhstype its element type), comparing with the
 * operator opr and no other.  A statement that runs as a table's owner must
 * not let a name pick the operator: "OPERATOR(schema.=)" still resolves
 * among the operators of that name in that schema by the operand types, and
 * for a column of a domain (or a parameter of another type) an operator
 * declared on exactly those types, made by whoever may create in the schema
 * (citext's in public, a type's owner), would be taken and its function run
 * as the owner.  So outside pg_catalog each operand whose type is not the
 * operator's declared input type is cast to it (qualified): the exact match
 * is then the operator itself, which no other operator can be (one operator
 * per name, schema and input types).  In pg_catalog, where only a superuser
 * can add an operator, and for operands of the declared types, the operands
 * are left as they are: Citus prunes shards on a bare distribution column
 * only (an explicit cast of it, even a domain's to its base type, sends the
 * statement to every shard).  Then the name is resolved with the operand
 * types as the parser will resolve it: any other answer (an operator on
 * pseudo-types left uncast, a catalog changed under us) refuses the
 * statement (42725).  With bare_lhs the left operand is never cast
 * (CvRoutedClause, whose statements are checked after parsing).
 */
static char *
maint_operator_clause(Oid opr, const char *lhs, Oid lhstype, const char *rhs, Oid rhstype, bool any,
					  bool bare_lhs)
{
	HeapTuple	otup;
	Form_pg_operator oform;
	char	   *nspname;
	char	   *oprname;
	Oid			left;
	Oid			right;
	Oid			ltype = lhstype;
	Oid			rtype = rhstype;
	StringInfoData buf;
	Operator	resolved;
	Oid			got = InvalidOid;
	Oid			oform_nsp;
	bool		cast;

	otup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	if (!HeapTupleIsValid(otup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	oform = (Form_pg_operator) GETSTRUCT(otup);
	oform_nsp = oform->oprnamespace;
	nspname = get_namespace_name(oform_nsp);
	oprname = pstrdup(NameStr(oform->oprname));
	left = oform->oprleft;
	right = oform->oprright;
	ReleaseSysCache(otup);
	if (nspname == NULL)
		elog(ERROR, "cache lookup failed for the schema of operator %u", opr);

	cast = (oform_nsp != PG_CATALOG_NAMESPACE);
	initStringInfo(&buf);
	if (cast && !bare_lhs && lhstype != left && !maint_pseudo_type(left))
	{
		appendStringInfo(&buf, "(%s)::%s", lhs, format_type_be_qualified(left));
		ltype = left;
	}
	else
		appendStringInfo(&buf, "%s", lhs);
	appendStringInfo(&buf, " OPERATOR(%s.%s) ", quote_identifier(nspname), oprname);
	if (cast && rhstype != right && !maint_pseudo_type(right))
	{
		Oid			rarray = any ? get_array_type(right) : InvalidOid;

		if (any && !OidIsValid(rarray))
			elog(ERROR, "type %s has no array type", format_type_be(right));
		appendStringInfo(&buf, any ? "ANY ((%s)::%s)" : "(%s)::%s", rhs,
						 format_type_be_qualified(any ? rarray : right));
		rtype = right;
	}
	else
		appendStringInfo(&buf, any ? "ANY (%s)" : "%s", rhs);

	/* the operator the parser will take for these operand types */
	resolved = oper(NULL, list_make2(makeString(nspname), makeString(oprname)),
					ltype, rtype, true, -1);
	if (resolved != NULL)
	{
		got = oprid(resolved);
		ReleaseSysCache(resolved);
	}
	if (got != opr)
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_FUNCTION),
				 errmsg("operator %s.%s resolves to another operator for types %s and %s",
						quote_identifier(nspname), oprname, format_type_be(ltype), format_type_be(rtype)),
				 errdetail("The statement runs as the table's owner and compares with operator %s only.",
						   format_operator(opr)),
				 errhint("Drop the operator that matches these types better.")));
	return buf.data;
}

/* the comparison with operator opr, both operands cast where needed (above) */
char *
CvOperatorClauseOpr(Oid opr, const char *lhs, Oid lhstype, const char *rhs, Oid rhstype, bool any)
{
	return maint_operator_clause(opr, lhs, lhstype, rhs, rhstype, any, false);
}

/* the same, with the default equality of type typid */
char *
CvOperatorClause(Oid typid, const char *lhs, Oid lhstype, const char *rhs, Oid rhstype, bool any)
{
	return maint_operator_clause(maint_eq_opr(typid), lhs, lhstype, rhs, rhstype, any, false);
}

/*
 * The same for a Citus distribution column col: the column left bare (Citus
 * prunes shards on "column = constant" only; a cast of a domain's column to
 * its base type sent a routed lookup() or purge batch to every shard), the
 * other operand cast.  A column of a domain then still resolves the name by
 * its own type, where an operator on (domain, base type) would match it
 * exactly: the statement must be run by CvExecuteCheckedOperator with the
 * operator returned in *opr, which checks the operator the parser took.
 */
char *
CvRoutedClause(Oid typid, const char *col, Oid coltype, const char *rhs, Oid rhstype, bool any, Oid *opr)
{
	*opr = maint_eq_opr(typid);
	return maint_operator_clause(*opr, col, coltype, rhs, rhstype, any, true);
}

/* CvExecuteCheckedOperator's walk: the operators of the expressions using parameter paramid */
typedef struct CvOprCheck
{
	int			paramid;
	Oid			opr;
	int			found;
	Oid			other;
} CvOprCheck;

/* whether an expression holds the external parameter *paramid */
static bool
maint_param_walker(Node *node, void *context)
{
	int			paramid = *(int *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Param))
		return ((Param *) node)->paramkind == PARAM_EXTERN && ((Param *) node)->paramid == paramid;
	return expression_tree_walker(node, maint_param_walker, context);
}

/* every operator applied to parameter paramid, in a query tree */
static bool
maint_opr_walker(Node *node, void *context)
{
	CvOprCheck *c = (CvOprCheck *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, maint_opr_walker, context, 0);
	if (IsA(node, OpExpr) || IsA(node, ScalarArrayOpExpr))
	{
		Oid			opno = IsA(node, OpExpr) ? ((OpExpr *) node)->opno : ((ScalarArrayOpExpr *) node)->opno;
		List	   *args = IsA(node, OpExpr) ? ((OpExpr *) node)->args : ((ScalarArrayOpExpr *) node)->args;

		if (maint_param_walker((Node *) args, &c->paramid))
		{
			c->found++;
			if (opno != c->opr)
				c->other = opno;
		}
	}
	return expression_tree_walker(node, maint_opr_walker, context);
}

/*
 * Run sql (SPI, with its parameters) once the parser has shown that every
 * operator applied to parameter paramid is opr (CvRoutedClause); else an
 * error (42725) and nothing run.  The plan is not saved, so nothing analyses
 * it again before it runs (only saved plans are invalidated by a catalog
 * change); a custom plan, so Citus sees the parameters' values and prunes.
 */
int
CvExecuteCheckedOperator(const char *sql, int nargs, Oid *types, Datum *vals, bool read_only, long count,
						 int paramid, Oid opr)
{
	SPIPlanPtr	plan;
	CvOprCheck	c;
	ListCell   *lc;
	int			rc;

	plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_CUSTOM_PLAN);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	c.paramid = paramid;
	c.opr = opr;
	c.found = 0;
	c.other = InvalidOid;
	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *ps = (CachedPlanSource *) lfirst(lc);
		ListCell   *lq;

		foreach(lq, ps->query_list)
			(void) maint_opr_walker((Node *) lfirst(lq), &c);
	}
	if (c.found == 0 || OidIsValid(c.other))
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_FUNCTION),
				 errmsg("the statement compares with operator %s instead of %s",
						OidIsValid(c.other) ? format_operator(c.other) : "none", format_operator(opr)),
				 errdetail("The statement runs as the table's owner and compares with operator %s only.",
						   format_operator(opr)),
				 errhint("Drop the operator that matches these types better.")));
	rc = SPI_execute_plan(plan, vals, NULL, read_only, count);
	SPI_freeplan(plan);
	return rc;
}

/*
 * customer_vault._maint_run(kind, tbl, params, blk_from, blk_to, max_rows, skip_locked)
 * runs one maintenance statement on tbl as its owner; the rows it changed, or
 * for a query every value of every row as text, row by row.
 */
Datum
cv_maint_run(PG_FUNCTION_ARGS)
{
	Oid			relid;
	HeapTuple	ctup;
	Form_pg_class cform;
	Oid			owner;
	char	   *qualname;
	const char *only;
	char		relkind;
	bool		shred;
	MemoryContext outer = CurrentMemoryContext;
	Oid			argtypes[3] = {TEXTOID, REGCLASSOID, TEXTARRAYOID};
	Datum		args[3];
	char		argnulls[3] = {' ', ' ', ' '};
	HeapTuple	btup;
	TupleDesc	bdesc;
	char	   *op;
	char	   *list;
	char	   *filter;
	char	   *priv;
	char	   *key;
	bool		isnull;
	Datum		bind;
	bool		has_bind;
	StringInfoData sql;
	StringInfoData sub;
	CvAsTableOwner sw;
	int			rc;
	uint64		processed;
	Datum	   *elems = NULL;
	bool	   *enulls = NULL;
	int			nelems = 0;
	ArrayType  *result;
	bool		routed;
	char	   *volatile distcol = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("maintenance kind and table must not be null")));
	relid = PG_GETARG_OID(1);
	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(ctup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	cform = (Form_pg_class) GETSTRUCT(ctup);
	owner = cform->relowner;
	relkind = cform->relkind;
	qualname = quote_qualified_identifier(get_namespace_name(cform->relnamespace),
										  NameStr(cform->relname));
	ReleaseSysCache(ctup);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the pieces of the statement, from extension code, as the caller */
	args[0] = PG_GETARG_DATUM(0);
	args[1] = ObjectIdGetDatum(relid);
	if (PG_ARGISNULL(2))
	{
		args[2] = (Datum) 0;
		argnulls[2] = 'n';
	}
	else
		args[2] = PG_GETARG_DATUM(2);
	rc = SPI_execute_with_args("SELECT op, list, filter, privilege, key_name, bind"
							   " FROM customer_vault._maint_sql($1, $2, $3)",
							   3, argtypes, args, argnulls, true, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "customer_vault._maint_sql did not answer");
	btup = SPI_tuptable->vals[0];
	bdesc = SPI_tuptable->tupdesc;
	op = maint_field(btup, bdesc, 1);
	list = maint_field(btup, bdesc, 2);
	filter = maint_field(btup, bdesc, 3);
	priv = maint_field(btup, bdesc, 4);
	key = maint_field(btup, bdesc, 5);
	bind = SPI_getbinval(btup, bdesc, 6, &isnull);
	has_bind = !isnull;
	if (op == NULL || priv == NULL)
		elog(ERROR, "customer_vault._maint_sql gave no operation");
	if (filter == NULL)
		filter = "true";
	if (key != NULL && strlen(key) >= sizeof(maint_key))
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("key name is too long")));

	/*
	 * A leaf partition is walked for its partitioned table: the privilege
	 * the caller needs is the one on the table the work was asked for (the
	 * root), as PostgreSQL checks when the partition is reached through it.
	 */
	if (get_rel_relispartition(relid))
	{
		List	   *ancestors = get_partition_ancestors(relid);

		maint_check_privilege(llast_oid(ancestors), owner, priv);
	}
	else
		maint_check_privilege(relid, owner, priv);

	/*
	 * ONLY: an inheritance child's rows are not the parent's (a child's ctid
	 * names another row of the parent); a partitioned table has no rows of
	 * its own, so it is read whole (its leaves are changed one by one).
	 */
	only = (relkind == RELKIND_PARTITIONED_TABLE) ? "" : "ONLY ";
	shred = (strcmp(op, "shred") == 0);

	/*
	 * A routed batch of a Citus table (_walk): first the distribution values
	 * of up to max_rows rows the filter selects (a query Citus runs on every
	 * shard, each stopping at max_rows), then the change of the rows of those
	 * values only: Citus prunes "distcol = ANY (values)" to the shards
	 * holding them, so the change goes to those shards and no other.
	 */
	routed = (strcmp(op, "delete_routed") == 0 || strcmp(op, "update_routed") == 0);
	if (routed)
	{
		if (PG_ARGISNULL(5) || PG_GETARG_INT32(5) < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a routed batch needs max_rows of at least 1")));
		if (strcmp(op, "update_routed") == 0 && list == NULL)
			elog(ERROR, "customer_vault._maint_sql gave no SET list");
		distcol = maint_citus_distcol(relid);
	}

	/* the rows of this batch: a block range, or the first max_rows */
	initStringInfo(&sub);
	appendStringInfo(&sub, "SELECT t.ctid FROM %s%s t WHERE ", only, qualname);
	if (!PG_ARGISNULL(3) && !PG_ARGISNULL(4))
		appendStringInfo(&sub,
						 "t.ctid OPERATOR(pg_catalog.>=) '(" INT64_FORMAT ",0)'::pg_catalog.tid"
						 " AND t.ctid OPERATOR(pg_catalog.<) '(" INT64_FORMAT ",0)'::pg_catalog.tid AND ",
						 PG_GETARG_INT64(3), PG_GETARG_INT64(4));
	appendStringInfo(&sub, "(%s)", filter);
	if (!PG_ARGISNULL(5))
		appendStringInfo(&sub, " LIMIT %d", PG_GETARG_INT32(5));

	initStringInfo(&sql);
	if (strcmp(op, "update") == 0 && list != NULL && !PG_ARGISNULL(3) && !PG_ARGISNULL(4) &&
		PG_ARGISNULL(5) && (PG_ARGISNULL(6) || !PG_GETARG_BOOL(6)))
		/* a block range waiting for locked rows: one plain UPDATE */
		appendStringInfo(&sql,
						 "UPDATE %s%s t SET %s WHERE"
						 " t.ctid OPERATOR(pg_catalog.>=) '(" INT64_FORMAT ",0)'::pg_catalog.tid"
						 " AND t.ctid OPERATOR(pg_catalog.<) '(" INT64_FORMAT ",0)'::pg_catalog.tid AND (%s)",
						 only, qualname, list, PG_GETARG_INT64(3), PG_GETARG_INT64(4), filter);
	else if (routed)
		/* the first step; the change is put together once its values are known */
		appendStringInfo(&sql, "SELECT t.%s FROM %s%s t WHERE (%s) LIMIT %d",
						 distcol, only, qualname, filter, PG_GETARG_INT32(5));
	else if (strcmp(op, "delete_where") == 0)
		/* every row the filter selects, at once (forget_subject: an indexed filter, any table kind) */
		appendStringInfo(&sql, "DELETE FROM %s%s t WHERE (%s)", only, qualname, filter);
	else if (strcmp(op, "update_where") == 0 && list != NULL)
		appendStringInfo(&sql, "UPDATE %s%s t SET %s WHERE (%s)", only, qualname, list, filter);
	else if (strcmp(op, "delete") == 0)
		appendStringInfo(&sql,
						 "DELETE FROM %s%s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(%s FOR UPDATE OF t%s))",
						 only, qualname, sub.data,
						 (!PG_ARGISNULL(6) && PG_GETARG_BOOL(6)) ? " SKIP LOCKED" : "");
	else if (strcmp(op, "update") == 0 && list != NULL)
		appendStringInfo(&sql,
						 "UPDATE %s%s SET %s WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(%s FOR UPDATE OF t%s))",
						 only, qualname, list, sub.data,
						 (!PG_ARGISNULL(6) && PG_GETARG_BOOL(6)) ? " SKIP LOCKED" : "");
	else if ((strcmp(op, "select") == 0 || shred) && list != NULL)
	{
		appendStringInfo(&sql, "SELECT %s FROM %s%s t WHERE ", list, only, qualname);
		if (!PG_ARGISNULL(3) && !PG_ARGISNULL(4))
			appendStringInfo(&sql,
							 "t.ctid OPERATOR(pg_catalog.>=) '(" INT64_FORMAT ",0)'::pg_catalog.tid"
							 " AND t.ctid OPERATOR(pg_catalog.<) '(" INT64_FORMAT ",0)'::pg_catalog.tid AND ",
							 PG_GETARG_INT64(3), PG_GETARG_INT64(4));
		appendStringInfo(&sql, "(%s)", filter);
	}
	else if (strcmp(op, "alter") == 0 && list != NULL)
		appendStringInfo(&sql, "ALTER TABLE %s %s", qualname, list);
	else
		elog(ERROR, "unknown maintenance operation \"%s\"", op);

	/* as the owner, security-restricted, settings confined, every row seen */
	CvBecomeTableOwner(owner, &sw);
	maint_relid = relid;
	strlcpy(maint_key, key ? key : "", sizeof(maint_key));
	PG_TRY();
	{
		if (has_bind)
		{
			Oid			btype = TEXTARRAYOID;

			rc = SPI_execute_with_args(sql.data, 1, &btype, &bind, NULL, false, 0);
		}
		else
			rc = SPI_execute(sql.data, false, 0);
		if (routed && rc == SPI_OK_SELECT && SPI_processed > 0)
		{
			/* the values found, as an array of the column's type, as $1 or $2 */
			Oid			vtype = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
			Oid			atype = get_array_type(vtype);
			int			nvals = (int) SPI_processed;
			Datum	   *vals = palloc(sizeof(Datum) * nvals);
			bool	   *vnulls = palloc(sizeof(bool) * nvals);
			int			dims[1] = {nvals};
			int			lbs[1] = {1};
			int16		typlen;
			bool		typbyval;
			char		typalign;
			Oid			ptypes[2] = {TEXTARRAYOID, atype};
			Datum		pvals[2] = {bind, (Datum) 0};
			int			vparam = has_bind ? 2 : 1;
			int			i;
			char	   *clause;
			Oid			eqopr;

			if (!OidIsValid(atype))
				elog(ERROR, "type %s has no array type", format_type_be(vtype));
			for (i = 0; i < nvals; i++)
				vals[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &vnulls[i]);
			get_typlenbyvalalign(vtype, &typlen, &typbyval, &typalign);
			pvals[vparam - 1] = PointerGetDatum(construct_md_array(vals, vnulls, 1, dims, lbs,
																   vtype, typlen, typbyval, typalign));
			ptypes[vparam - 1] = atype;
			resetStringInfo(&sql);
			/* compared with the type's own equality and no other (CvRoutedClause) */
			clause = CvRoutedClause(vtype, psprintf("t.%s", distcol), vtype,
									psprintf("$%d", vparam), vtype, true, &eqopr);
			if (strcmp(op, "delete_routed") == 0)
				appendStringInfo(&sql, "DELETE FROM %s%s t WHERE %s AND (%s)",
								 only, qualname, clause, filter);
			else
				appendStringInfo(&sql, "UPDATE %s%s t SET %s WHERE %s AND (%s)",
								 only, qualname, list, clause, filter);
			rc = CvExecuteCheckedOperator(sql.data, vparam, ptypes, pvals, false, 0, vparam, eqopr);
		}
	}
	PG_CATCH();
	{
		maint_relid = InvalidOid;
		maint_key[0] = '\0';
		PG_RE_THROW();
	}
	PG_END_TRY();
	maint_relid = InvalidOid;
	maint_key[0] = '\0';
	CvRestoreCaller(&sw);
	if (rc < 0)
		elog(ERROR, "maintenance statement failed: %s", SPI_result_code_string(rc));

	processed = SPI_processed;
	if (shred)
	{
		/*
		 * The subjects found as the owner are shredded here, as the caller
		 * (who must be allowed shred_subject): they never leave this
		 * function, only how many keys were destroyed.
		 */
		SPITupleTable *tt = SPI_tuptable;
		char	  **subjects = palloc(sizeof(char *) * Max(processed, 1));
		uint64		nsubjects = processed;
		uint64		i;
		uint64		shredded = 0;
		Oid			stype = TEXTOID;

		for (i = 0; i < nsubjects; i++)
			subjects[i] = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		for (i = 0; i < nsubjects; i++)
		{
			Datum		sarg;
			bool		snull;
			Datum		sres;

			if (subjects[i] == NULL)
				continue;
			sarg = CStringGetTextDatum(subjects[i]);
			rc = SPI_execute_with_args("SELECT customer_vault.shred_subject($1)",
									   1, &stype, &sarg, NULL, false, 1);
			if (rc != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "customer_vault.shred_subject did not answer");
			sres = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &snull);
			if (!snull && DatumGetBool(sres))
				shredded++;
		}
		processed = shredded;
	}
	if (strcmp(op, "select") == 0 && SPI_tuptable != NULL)
	{
		SPITupleTable *tt = SPI_tuptable;
		int			ncols = tt->tupdesc->natts;
		uint64		i;
		int			j;

		if (processed * ncols > (uint64) MaxAllocSize / sizeof(Datum))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("maintenance query returned too many values")));
		nelems = (int) (processed * ncols);
		elems = MemoryContextAlloc(outer, sizeof(Datum) * Max(nelems, 1));
		enulls = MemoryContextAlloc(outer, sizeof(bool) * Max(nelems, 1));
		for (i = 0; i < processed; i++)
			for (j = 0; j < ncols; j++)
			{
				char	   *v = SPI_getvalue(tt->vals[i], tt->tupdesc, j + 1);
				int			k = (int) (i * ncols + j);
				MemoryContext old = MemoryContextSwitchTo(outer);

				enulls[k] = (v == NULL);
				elems[k] = v ? PointerGetDatum(cstring_to_text(v)) : (Datum) 0;
				MemoryContextSwitchTo(old);
			}
	}
	else
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), UINT64_FORMAT, processed);
		nelems = 1;
		elems = MemoryContextAlloc(outer, sizeof(Datum));
		enulls = MemoryContextAlloc(outer, sizeof(bool));
		{
			MemoryContext old = MemoryContextSwitchTo(outer);

			elems[0] = PointerGetDatum(cstring_to_text(buf));
			enulls[0] = false;
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();

	{
		int			dims[1] = {nelems};
		int			lbs[1] = {1};

		result = construct_md_array(elems, enulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
	}
	PG_RETURN_ARRAYTYPE_P(result);
}

/* an error unless a maintenance statement runs (and, with a key, seals under it) */
static void
maint_gate(FunctionCallInfo fcinfo, int key_argno)
{
	if (!OidIsValid(maint_relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s works only inside customer_vault maintenance",
						get_func_name(fcinfo->flinfo->fn_oid))));
	if (key_argno >= 0)
	{
		char	   *k;

		if (PG_ARGISNULL(key_argno))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key name must not be null")));
		k = text_to_cstring(PG_GETARG_TEXT_PP(key_argno));
		if (maint_key[0] == '\0' || strcmp(k, maint_key) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s works only under the key of the column being protected",
							get_func_name(fcinfo->flinfo->fn_oid))));
	}
}

/* _m_reseal: _reseal, inside maintenance only */
Datum
cv_m_reseal(PG_FUNCTION_ARGS)
{
	maint_gate(fcinfo, -1);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_NARGS() > 2 && PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("text_form must not be null")));
	return cv_reseal(fcinfo);
}

/* _m_needs_reseal: _needs_reseal, inside maintenance only (STRICT) */
Datum
cv_m_needs_reseal(PG_FUNCTION_ARGS)
{
	maint_gate(fcinfo, -1);
	return cv_needs_reseal(fcinfo);
}

/* _m_seal_column: _seal_column, inside protect_column's rewrite, its key only */
Datum
cv_m_seal_column(PG_FUNCTION_ARGS)
{
	maint_gate(fcinfo, 1);
	return cv_seal_column(fcinfo);
}

/* _m_blind_index_rewrite: _blind_index_rewrite, inside that table's rewrite only (STRICT) */
Datum
cv_m_blind_index_rewrite(PG_FUNCTION_ARGS)
{
	maint_gate(fcinfo, -1);
	if (PG_GETARG_OID(0) != maint_relid)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s works only for the table being rewritten",
						get_func_name(fcinfo->flinfo->fn_oid))));
	return cv_blind_index_rewrite(fcinfo);
}

/* _m_subject_has_key: _subject_has_key, inside maintenance only (STRICT) */
Datum
cv_m_subject_has_key(PG_FUNCTION_ARGS)
{
	maint_gate(fcinfo, -1);
	return cv_subject_has_key(fcinfo);
}
