/*-------------------------------------------------------------------------
 * brake.c
 *		The exfiltration brake and role activity: the most values one
 *		statement may decrypt (customer_vault.decrypt_limit), the most values a
 *		role may decrypt per minute over all its sessions
 *		(customer_vault.decrypt_rate_limit), and per role the last successful
 *		login (ClientAuthentication_hook) and the last decrypt, kept in shared
 *		memory and persisted in pg_stat/customer_vault_activity.stat (written
 *		at a clean shutdown and at most every CV_SAVE_INTERVAL by a backend,
 *		to a temporary file renamed durably).
 *
 * Both limits are PGC_SUSET settings: a role cannot SET, RESET, set_config
 * or ALTER ROLE them for itself, nor pass them in PGOPTIONS; an admin sets
 * them per role through set_decrypt_limit(), which runs ALTER ROLE ... SET as
 * the extension's owner.  Per-role settings apply to the login (session)
 * user, so SET ROLE and SECURITY DEFINER functions neither lift nor add a cap.
 *
 * One "statement" is one top-level portal: the values decrypted while a
 * portal runs count together, whatever functions, procedures (also across
 * their COMMITs) or nested queries do the work, and the FETCHes of one cursor
 * count together.  A value read through a cursor declared by an earlier
 * statement counts twice: for the cursor (all its FETCHes together) and for
 * the top-level statement running now (keyed by the statement's start), so
 * neither one statement draining several cursors nor one cursor read over
 * several statements passes the limit.  Parallel plans are not made for a
 * session with a per-statement limit (a worker's decrypts would be counted
 * apart).
 *
 * The rate is a sliding window of one minute (the previous minute's count
 * weighted by its remaining share, plus the current one's), shared by every
 * session of the login role; sessions take quota from it in small slices so
 * the shared lock is taken once per slice, not per value.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include <unistd.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "optimizer/planner.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/pquery.h"
#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

/*
 * libpq/auth.h pulls in libpq-be.h, which needs the GSSAPI headers of a
 * server built with GSSAPI: declare the hook (unchanged from 9.x to 18) here.
 */
struct Port;
typedef void (*ClientAuthentication_hook_type) (struct Port *, int);
extern PGDLLIMPORT ClientAuthentication_hook_type ClientAuthentication_hook;

#define CV_ACTIVITY_FILE	PGSTAT_STAT_PERMANENT_DIRECTORY "/customer_vault_activity.stat"
#define CV_ACTIVITY_MAGIC	0x43564131	/* "CVA1" */
#define CV_ACTIVITY_MAX		10000	/* roles tracked */
#define CV_SAVE_INTERVAL	(5 * USECS_PER_MINUTE)

int			cv_decrypt_limit = 0;
int			cv_decrypt_rate_limit = 0;
char	   *cv_lock_exempt_roles = NULL;

/* one role's activity and rate window (shared) */
typedef struct CvRoleActivity
{
	Oid			role;			/* hash key */
	TimestampTz noticed;		/* first known to the tracking */
	TimestampTz last_login;		/* 0 = never seen */
	TimestampTz last_decrypt;
	TimestampTz last_refused;
	int64		refused;		/* statements stopped by the brake */
	int64		window;			/* minute number of the current window */
	int64		window_count;	/* values taken in it */
	int64		prev_count;		/* values taken in the minute before */
} CvRoleActivity;

/* the persisted part of an entry */
typedef struct CvActivityRecord
{
	Oid			role;
	TimestampTz noticed;
	TimestampTz last_login;
	TimestampTz last_decrypt;
	TimestampTz last_refused;
	int64		refused;
} CvActivityRecord;

typedef struct CvBrakeShared
{
	LWLock	   *lock;			/* protects the hash and the fields below */
	TimestampTz tracking_since; /* first start with no activity file */
	TimestampTz last_saved;
	bool		dirty;
	bool		full_reported;
	pg_atomic_flag saving;
} CvBrakeShared;

static CvBrakeShared *cv_brake = NULL;
static HTAB *cv_activity = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static planner_hook_type prev_planner_hook = NULL;

/* a login authenticated and not yet recorded (recorded at its commit) */
static bool cv_login_pending = false;

/* values decrypted per top-level portal of this transaction */
typedef struct CvStmtCount
{
	TimestampTz key;			/* hash key: the portal's creation time */
	int64		values;
} CvStmtCount;

static HTAB *cv_stmt_counts = NULL;
static TimestampTz cv_cur_key = 0;
static CvStmtCount *cv_cur = NULL;	/* the active portal's count */
static TimestampTz cv_top_key = 0;
static CvStmtCount *cv_top = NULL;	/* the running top-level statement's */

/* rate quota taken from the shared window and not yet used */
static int64 cv_quota = 0;

/* ---------- shared memory and the activity file ---------- */

/* size of the shared state */
static Size
cv_brake_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(CvBrakeShared)),
					hash_estimate_size(CV_ACTIVITY_MAX, sizeof(CvRoleActivity)));
}

/* ask for shared memory and a lock */
static void
cv_brake_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(cv_brake_shmem_size());
	RequestNamedLWLockTranche("customer_vault brake", 1);
}

/* find or make a role's entry (lock held exclusively); NULL when full */
static CvRoleActivity *
cv_activity_entry(Oid role, TimestampTz now)
{
	CvRoleActivity *e;
	bool		found;

	e = hash_search(cv_activity, &role, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		if (!cv_brake->full_reported)
		{
			cv_brake->full_reported = true;
			ereport(LOG,
					(errmsg("customer_vault: role activity is full (%d roles); further roles are not tracked",
							CV_ACTIVITY_MAX)));
		}
		return NULL;
	}
	if (!found)
	{
		memset((char *) e + sizeof(Oid), 0, sizeof(CvRoleActivity) - sizeof(Oid));
		e->noticed = now;
	}
	return e;
}

/* load the activity file into the (new) hash; postmaster, at startup */
static void
cv_activity_load(void)
{
	FILE	   *f = AllocateFile(CV_ACTIVITY_FILE, PG_BINARY_R);
	uint32		magic;
	TimestampTz since;
	int32		n;

	cv_brake->tracking_since = GetCurrentTimestamp();
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", CV_ACTIVITY_FILE)));
		return;
	}
	if (fread(&magic, sizeof(magic), 1, f) != 1 || magic != CV_ACTIVITY_MAGIC ||
		fread(&since, sizeof(since), 1, f) != 1 ||
		fread(&n, sizeof(n), 1, f) != 1 || n < 0 || n > CV_ACTIVITY_MAX)
	{
		ereport(LOG,
				(errmsg("customer_vault: ignoring invalid file \"%s\"", CV_ACTIVITY_FILE)));
		FreeFile(f);
		return;
	}
	cv_brake->tracking_since = since;
	while (n-- > 0)
	{
		CvActivityRecord r;
		CvRoleActivity *e;

		if (fread(&r, sizeof(r), 1, f) != 1)
		{
			ereport(LOG,
					(errmsg("customer_vault: file \"%s\" is truncated", CV_ACTIVITY_FILE)));
			break;
		}
		e = cv_activity_entry(r.role, r.noticed);
		if (e == NULL)
			break;
		e->noticed = r.noticed;
		e->last_login = r.last_login;
		e->last_decrypt = r.last_decrypt;
		e->last_refused = r.last_refused;
		e->refused = r.refused;
	}
	FreeFile(f);
}

/*
 * Write the activity file: a copy taken under the shared lock is written to a
 * temporary file, which is then renamed durably over the old one.  Problems
 * are logged, never raised (this runs at commit and at shutdown).
 */
static void
cv_activity_save(bool locked)
{
	CvActivityRecord *recs;
	HASH_SEQ_STATUS status;
	CvRoleActivity *e;
	int32		n = 0;
	uint32		magic = CV_ACTIVITY_MAGIC;
	TimestampTz since;
	char		tmp[MAXPGPATH];
	FILE	   *f;
	bool		ok;

	if (!pg_atomic_test_set_flag(&cv_brake->saving))
		return;					/* another process is saving */
	recs = malloc(sizeof(CvActivityRecord) * CV_ACTIVITY_MAX);
	if (recs == NULL)
	{
		pg_atomic_clear_flag(&cv_brake->saving);
		return;
	}
	if (!locked)
		LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
	since = cv_brake->tracking_since;
	hash_seq_init(&status, cv_activity);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (n >= CV_ACTIVITY_MAX)
		{
			hash_seq_term(&status);
			break;
		}
		recs[n].role = e->role;
		recs[n].noticed = e->noticed;
		recs[n].last_login = e->last_login;
		recs[n].last_decrypt = e->last_decrypt;
		recs[n].last_refused = e->last_refused;
		recs[n].refused = e->refused;
		n++;
	}
	cv_brake->dirty = false;
	cv_brake->last_saved = GetCurrentTimestamp();
	if (!locked)
		LWLockRelease(cv_brake->lock);

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", CV_ACTIVITY_FILE, (int) getpid());
	f = AllocateFile(tmp, PG_BINARY_W);
	ok = f != NULL &&
		fwrite(&magic, sizeof(magic), 1, f) == 1 &&
		fwrite(&since, sizeof(since), 1, f) == 1 &&
		fwrite(&n, sizeof(n), 1, f) == 1 &&
		(n == 0 || fwrite(recs, sizeof(CvActivityRecord), n, f) == (size_t) n);
	if (f != NULL && FreeFile(f) != 0)
		ok = false;
	free(recs);
	if (!ok)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
		unlink(tmp);
	}
	else
		(void) durable_rename(tmp, CV_ACTIVITY_FILE, LOG);
	pg_atomic_clear_flag(&cv_brake->saving);
}

/* at postmaster exit: save unless it is a crash */
static void
cv_brake_shmem_shutdown(int code, Datum arg)
{
	if (code != 0 || cv_brake == NULL || cv_activity == NULL)
		return;
	cv_activity_save(true);
}

/* create or attach the shared state; the postmaster loads the file */
static void
cv_brake_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cv_brake = ShmemInitStruct("customer_vault brake", sizeof(CvBrakeShared), &found);
	if (!found)
	{
		cv_brake->lock = &(GetNamedLWLockTranche("customer_vault brake"))->lock;
		cv_brake->last_saved = 0;
		cv_brake->dirty = false;
		cv_brake->full_reported = false;
		pg_atomic_init_flag(&cv_brake->saving);
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(CvRoleActivity);
	cv_activity = ShmemInitHash("customer_vault role activity", CV_ACTIVITY_MAX, CV_ACTIVITY_MAX,
								&info, HASH_ELEM | HASH_BLOBS);
	if (!found)
		cv_activity_load();
	LWLockRelease(AddinShmemInitLock);
	if (!IsUnderPostmaster)
		on_shmem_exit(cv_brake_shmem_shutdown, (Datum) 0);
}

/* save now and then (never more often than CV_SAVE_INTERVAL) */
static void
cv_activity_maybe_save(TimestampTz now)
{
	if (cv_brake->dirty && now - cv_brake->last_saved >= CV_SAVE_INTERVAL)
		cv_activity_save(false);
}

/* the shared state, or an error when the library was not preloaded */
static void
cv_require_shmem(const char *what)
{
	if (cv_brake == NULL || cv_activity == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s needs customer_vault in shared_preload_libraries", what),
				 errhint("Add customer_vault to shared_preload_libraries and restart the server.")));
}

/* ---------- login tracking ---------- */

/* a successful authentication: recorded when the login's transaction commits */
static void
cv_client_auth(struct Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status == STATUS_OK)
		cv_login_pending = true;
}

/* record the pending login of the session user; forget portal counts */
static void
cv_brake_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT && cv_login_pending &&
		OidIsValid(GetSessionUserId()) && cv_brake != NULL)
	{
		TimestampTz now = GetCurrentTimestamp();
		CvRoleActivity *e;

		cv_login_pending = false;
		LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
		e = cv_activity_entry(GetSessionUserId(), now);
		if (e != NULL)
		{
			e->last_login = now;
			cv_brake->dirty = true;
		}
		LWLockRelease(cv_brake->lock);
		cv_activity_maybe_save(now);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		/*
		 * Portals of this transaction are gone, except the running one of a
		 * procedure that commits: keep only the current statement's count.
		 */
		if (cv_stmt_counts != NULL && hash_get_num_entries(cv_stmt_counts) > 1)
		{
			HASH_SEQ_STATUS status;
			CvStmtCount *c;
			TimestampTz keep = GetCurrentStatementStartTimestamp();

			hash_seq_init(&status, cv_stmt_counts);
			while ((c = hash_seq_search(&status)) != NULL)
			{
				if (c->key != keep)
					hash_search(cv_stmt_counts, &c->key, HASH_REMOVE, NULL);
			}
			cv_cur_key = 0;
			cv_cur = NULL;
			cv_top_key = 0;
			cv_top = NULL;
		}
	}
}

/* ---------- the brake ---------- */

/* no parallel plans for a session under a per-statement limit */
static PlannedStmt *
cv_brake_planner(Query *parse, const char *query_string, int cursorOptions,
				 ParamListInfo boundParams)
{
	if (cv_decrypt_limit > 0)
		cursorOptions &= ~CURSOR_OPT_PARALLEL_OK;
	if (prev_planner_hook)
		return prev_planner_hook(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/* log a refusal (server log only) and count it for the role */
static void
cv_brake_note_refusal(const char *kind, int limit, int64 values)
{
	Oid			role = GetSessionUserId();
	char	   *name = GetUserNameFromId(role, true);

	ereport(LOG_SERVER_ONLY,
			(errhidestmt(true), errhidecontext(true),
			 errmsg("customer_vault brake: refused role=%s kind=%s limit=%d values=%lld",
					name ? quote_identifier(name) : "?", kind, limit, (long long) values)));
	if (cv_brake != NULL)
	{
		TimestampTz now = GetCurrentTimestamp();
		CvRoleActivity *e;

		LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
		e = cv_activity_entry(role, now);
		if (e != NULL)
		{
			e->refused++;
			e->last_refused = now;
			cv_brake->dirty = true;
		}
		LWLockRelease(cv_brake->lock);
	}
}

/* the rate window of an entry moved on to minute `minute` */
static void
cv_roll_window(CvRoleActivity *e, int64 minute)
{
	if (e->window == minute)
		return;
	e->prev_count = (e->window == minute - 1) ? e->window_count : 0;
	e->window_count = 0;
	e->window = minute;
}

/* take a slice of rate quota for the session user, or refuse */
static void
cv_rate_reserve(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		minute = now / USECS_PER_MINUTE;
	double		frac = (double) (now % USECS_PER_MINUTE) / USECS_PER_MINUTE;
	int			limit = cv_decrypt_rate_limit;
	int64		slice = Min(16, Max(1, limit / 16));
	int64		used;
	int64		grant = 0;
	CvRoleActivity *e;

	cv_require_shmem("customer_vault.decrypt_rate_limit");
	LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
	e = cv_activity_entry(GetSessionUserId(), now);
	if (e != NULL)
	{
		cv_roll_window(e, minute);
		used = e->window_count + (int64) (e->prev_count * (1.0 - frac) + 0.999999);
		if (used < limit)
		{
			grant = Min(slice, limit - used);
			e->window_count += grant;
		}
	}
	LWLockRelease(cv_brake->lock);
	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("decrypt rate limit cannot be enforced: role activity is full"),
				 errhint("Drop unused roles or restart the server.")));
	if (grant == 0)
	{
		cv_brake_note_refusal("rate", limit, cv_cur ? cv_cur->values : 0);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("decrypt rate limit exceeded"),
				 errdetail("Your role may decrypt at most %d values per minute over all its sessions.", limit),
				 errhint("Wait a minute and read fewer rows at a time, or ask an administrator to raise customer_vault.decrypt_rate_limit for your role.")));
	}
	cv_quota = grant;
}

/* the counter kept under key (created at zero) */
static CvStmtCount *
cv_brake_count(TimestampTz key)
{
	CvStmtCount *c;
	bool		found;

	if (cv_stmt_counts == NULL)
	{
		HASHCTL		info;

		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(TimestampTz);
		info.entrysize = sizeof(CvStmtCount);
		info.hcxt = TopMemoryContext;
		cv_stmt_counts = hash_create("customer_vault statement counts", 16, &info,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	c = hash_search(cv_stmt_counts, &key, HASH_ENTER, &found);
	if (!found)
		c->values = 0;
	return c;
}

/* the first decrypt of a portal: its counter, and the roles' last decrypt */
static void
cv_brake_switch(TimestampTz key)
{
	cv_cur = cv_brake_count(key);
	cv_cur_key = key;

	if (cv_brake != NULL && !IsParallelWorker())
	{
		TimestampTz now = GetCurrentTimestamp();
		Oid			session = GetSessionUserId();
		Oid			outer = GetOuterUserId();
		CvRoleActivity *e;

		LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
		e = cv_activity_entry(session, now);
		if (e != NULL)
			e->last_decrypt = now;
		if (OidIsValid(outer) && outer != session)
		{
			e = cv_activity_entry(outer, now);
			if (e != NULL)
				e->last_decrypt = now;
		}
		cv_brake->dirty = true;
		LWLockRelease(cv_brake->lock);
		cv_activity_maybe_save(now);
	}
}

/*
 * Called by CvOpenEnvelope after each value decrypted for a reader: counts it
 * for the running statement and the role's rate, and stops the statement
 * past either limit.
 */
void
CvBrakeNoteDecrypt(uint32 key_id)
{
	TimestampTz top = GetCurrentStatementStartTimestamp();
	TimestampTz key = ActivePortal != NULL ? ActivePortal->creation_time : top;
	int64		values;

	if (cv_cur == NULL || key != cv_cur_key)
		cv_brake_switch(key);
	values = ++cv_cur->values;

	/*
	 * A cursor of an earlier statement (its portal was created before this
	 * statement began): the value also counts for the running statement.
	 */
	if (key != top)
	{
		if (cv_top == NULL || top != cv_top_key)
		{
			cv_top = cv_brake_count(top);
			cv_top_key = top;
		}
		cv_top->values++;
		if (cv_top->values > values)
			values = cv_top->values;
	}
	if (cv_decrypt_limit > 0 && values > cv_decrypt_limit)
	{
		cv_brake_note_refusal("statement", cv_decrypt_limit, values);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("decrypt limit exceeded: one statement may decrypt at most %d values",
						cv_decrypt_limit),
				 errhint("Read fewer rows at a time (for example one customer's), or ask an administrator to raise customer_vault.decrypt_limit for your role.")));
	}
	if (cv_decrypt_rate_limit > 0)
	{
		if (cv_quota <= 0)
			cv_rate_reserve();
		cv_quota--;
	}
}

/* register the hooks; called from _PG_init */
void
BrakeInit(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = cv_brake_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = cv_brake_shmem_startup;
		prev_client_auth_hook = ClientAuthentication_hook;
		ClientAuthentication_hook = cv_client_auth;
	}
	prev_planner_hook = planner_hook;
	planner_hook = cv_brake_planner;
	RegisterXactCallback(cv_brake_xact_callback, NULL);
}

/* ---------- SQL ---------- */

PG_FUNCTION_INFO_V1(cv_role_activity);

/*
 * _role_activity(): every tracked role's noticed, last login, last decrypt,
 * refusals and last refusal, then saves the file if it is due.
 */
Datum
cv_role_activity(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS status;
	CvRoleActivity *e;

	cv_require_shmem("role activity");
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(cv_brake->lock, LW_SHARED);
	hash_seq_init(&status, cv_activity);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = ObjectIdGetDatum(e->role);
		values[1] = TimestampTzGetDatum(e->noticed);
		values[2] = TimestampTzGetDatum(e->last_login);
		nulls[2] = e->last_login == 0;
		values[3] = TimestampTzGetDatum(e->last_decrypt);
		nulls[3] = e->last_decrypt == 0;
		values[4] = Int64GetDatum(e->refused);
		values[5] = TimestampTzGetDatum(e->last_refused);
		nulls[5] = e->last_refused == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(cv_brake->lock);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(cv_activity_tracking_since);

/* _activity_tracking_since(): when the tracking began (the first start without a file) */
Datum
cv_activity_tracking_since(PG_FUNCTION_ARGS)
{
	TimestampTz since;

	cv_require_shmem("role activity");
	LWLockAcquire(cv_brake->lock, LW_SHARED);
	since = cv_brake->tracking_since;
	LWLockRelease(cv_brake->lock);
	PG_RETURN_TIMESTAMPTZ(since);
}

/*
 * Forget the entries of dropped roles, so that a role created later with a
 * reused OID does not inherit their history (checked without the lock held).
 */
static void
cv_activity_forget_dropped(void)
{
	HASH_SEQ_STATUS status;
	CvRoleActivity *e;
	Oid		   *roles;
	int			n = 0;
	int			i;

	roles = palloc(sizeof(Oid) * CV_ACTIVITY_MAX);
	LWLockAcquire(cv_brake->lock, LW_SHARED);
	hash_seq_init(&status, cv_activity);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (n >= CV_ACTIVITY_MAX)
		{
			hash_seq_term(&status);
			break;
		}
		roles[n++] = e->role;
	}
	LWLockRelease(cv_brake->lock);
	for (i = 0; i < n; i++)
	{
		if (SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(roles[i])))
			continue;
		LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
		(void) hash_search(cv_activity, &roles[i], HASH_REMOVE, NULL);
		cv_brake->dirty = true;
		LWLockRelease(cv_brake->lock);
	}
	pfree(roles);
}

PG_FUNCTION_INFO_V1(cv_activity_notice);

/*
 * _activity_notice(roles oid[]): start tracking these roles (their "noticed"
 * time is now) unless already tracked; a role never seen counts as idle
 * only from the time it was noticed.  Entries of dropped roles are removed.
 * Returns how many were new.
 */
Datum
cv_activity_notice(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			added = 0;
	TimestampTz now = GetCurrentTimestamp();

	cv_require_shmem("role activity");
	if (ARR_ELEMTYPE(arr) != OIDOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("roles must be an oid array")));
	deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
	LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		Oid			role;
		bool		found;

		if (nulls[i])
			continue;
		role = DatumGetObjectId(elems[i]);
		(void) hash_search(cv_activity, &role, HASH_FIND, &found);
		if (!found && cv_activity_entry(role, now) != NULL)
		{
			added++;
			cv_brake->dirty = true;
		}
	}
	LWLockRelease(cv_brake->lock);
	cv_activity_forget_dropped();
	cv_activity_maybe_save(now);
	PG_RETURN_INT32(added);
}

PG_FUNCTION_INFO_V1(cv_activity_shift);

/*
 * _activity_shift(by interval): moves every tracked time, and the start of
 * the tracking, back by a positive number of days; superuser only (tests
 * age entries with it instead of waiting).
 */
Datum
cv_activity_shift(PG_FUNCTION_ARGS)
{
	Interval   *by = PG_GETARG_INTERVAL_P(0);
	int64		usecs;
	HASH_SEQ_STATUS status;
	CvRoleActivity *e;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may shift role activity")));
	if (by->month != 0 || by->time != 0 || by->day <= 0 || by->day > 36500)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the shift must be a whole number of days between 1 and 36500")));
	cv_require_shmem("role activity");
	usecs = (int64) by->day * USECS_PER_DAY;
	LWLockAcquire(cv_brake->lock, LW_EXCLUSIVE);
	cv_brake->tracking_since -= usecs;
	hash_seq_init(&status, cv_activity);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		e->noticed -= usecs;
		if (e->last_login != 0)
			e->last_login -= usecs;
		if (e->last_decrypt != 0)
			e->last_decrypt -= usecs;
	}
	cv_brake->dirty = true;
	LWLockRelease(cv_brake->lock);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cv_activity_save_now);

/* _activity_save(): write the activity file now (superuser only) */
Datum
cv_activity_save_now(PG_FUNCTION_ARGS)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may save role activity")));
	cv_require_shmem("role activity");
	cv_activity_save(false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cv_lock_exempt_role_names);

/* _lock_exempt_roles(): customer_vault.lock_exempt_roles as a name array */
Datum
cv_lock_exempt_role_names(PG_FUNCTION_ARGS)
{
	char	   *raw = pstrdup(cv_lock_exempt_roles ? cv_lock_exempt_roles : "");
	List	   *names;
	ListCell   *lc;
	Datum	   *elems;
	int			n = 0;

	if (!SplitIdentifierString(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("customer_vault.lock_exempt_roles is not a list of role names")));
	elems = palloc(sizeof(Datum) * (list_length(names) + 1));
	foreach(lc, names)
	{
		Name		nm = palloc0(NAMEDATALEN);

		namestrcpy(nm, (char *) lfirst(lc));
		elems[n++] = NameGetDatum(nm);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR));
}
