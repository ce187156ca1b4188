/*-------------------------------------------------------------------------
 * customer_vault.h
 *		Declarations shared by the modules of customer_vault, and the
 *		compatibility macros that keep one source tree building on
 *		PostgreSQL 15 to 18 (every version check of the C code lives here).
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_VAULT_H
#define CUSTOMER_VAULT_H

#include "postgres.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* the varlena macros moved out of postgres.h into varatt.h in 16 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

#include "crypto.h"
#include "envelope.h"

#ifndef CV_VERSION
#error "CV_VERSION must be defined by the Makefile from customer_vault.control"
#endif

#define CV_SCHEMA			"customer_vault"
#define CV_GUC_PREFIX		"customer_vault"

/* soft input errors (errsave) exist from PostgreSQL 16 on */
#if PG_VERSION_NUM >= 160000
#define CV_INPUT_ERROR(fcinfo, rest) ereturn((fcinfo)->context, (Datum) 0, rest)
#else
#define CV_INPUT_ERROR(fcinfo, rest) ereport(ERROR, rest)
#endif

#if PG_VERSION_NUM < 150000
#error "customer_vault requires PostgreSQL 15 or later"
#endif

/* a PGPROC's local transaction id moved into its vxid in 17 (needs storage/proc.h) */
#if PG_VERSION_NUM >= 170000
#define CV_PROC_LXID(proc) ((proc)->vxid.lxid)
#else
#define CV_PROC_LXID(proc) ((proc)->lxid)
#endif

/* build_attrmap_by_name gained a missing_ok argument in 16 (needs access/attmap.h) */
#if PG_VERSION_NUM >= 160000
#define CV_BUILD_ATTRMAP_BY_NAME(indesc, outdesc) build_attrmap_by_name((indesc), (outdesc), false)
#else
#define CV_BUILD_ATTRMAP_BY_NAME(indesc, outdesc) build_attrmap_by_name((indesc), (outdesc))
#endif

/* guc.c */
extern char *cv_root_key_file;
extern char *cv_root_key_command;
extern char *cv_previous_root_key_file;
extern char *cv_purpose;
extern int	cv_key_max_age;
extern void GucInit(void);

/* brake.c: decrypt limits per statement and per role, role activity */
extern int	cv_decrypt_limit;
extern int	cv_decrypt_rate_limit;
extern char *cv_lock_exempt_roles;
extern void BrakeInit(void);
extern void CvBrakeNoteDecrypt(uint32 key_id);
/* audit.c: the decrypt audit (customer_vault.audit_decrypt) */
#define CV_AUDIT_OFF		0
#define CV_AUDIT_STATEMENT	1
#define CV_AUDIT_VALUE		2
extern int	cv_audit_decrypt;
extern int	cv_audit_queue_size;
extern int	cv_audit_queue_share;
extern int	cv_audit_wait;
extern void AuditInit(void);
extern void AuditShmemRequest(void);
extern void AuditShmemStartup(void);
extern void CvAuditNoteDecrypt(uint32 key_id, const char *ctx, int ctxlen);
extern PGDLLEXPORT void cv_audit_worker_main(Datum arg);

/* citus.c: the local relation of an extension table that Citus made a reference table */
extern Oid CvCitusRowsRelation(Oid relid, Oid *idx, int nindex);
extern bool CvCitusTable(Oid relid);
extern bool CvCitusIsWorker(void);
extern void CvRefuseOnCitusWorker(const char *what);
extern char *CvCitusForcedShards(Oid relid, Oid owner, int *nforced);
extern void CvCitusRefuseForcedShards(Oid relid, Oid owner, const char *what);

/* consent.c */

/*
 * The longest subject identifier, in bytes, that a subject key
 * (encrypt_for_subject), an erasure (forget_subject) and, since 0.5.0, a
 * consent (grant_consent, import_consents, withdraw_consent) accept; longer
 * ones are refused with 54000, so consent checks answer false for them.  It
 * keeps consent_state's primary key (subject, purpose) far below the btree
 * limit (which refused subjects over about 2.7 kB with an index error), and a
 * subject whose consent is recorded can always be forgotten.
 * withdraw_consent (sql/src/40_consent.sql) has the same number.
 */
#define CV_SUBJECT_MAX			255

extern int	cv_consent_cache_size;
extern void ConsentInit(void);

/* forget.c: forget_subject, its statements kept per session */
extern void ForgetRelcacheInval(Oid relid);
extern void CvErasureLabelsChanged(void);

/*
 * maint.c: acting as a table's owner inside a security-restricted operation,
 * in a GUC nest level of its own with a pinned search_path and row security
 * off (maintenance, erasure, consent writes), and the output settings
 * pinned (CvPinOutputSettings: extra_float_digits, DateStyle, IntervalStyle,
 * bytea_output, standard_conforming_strings, lc_monetary) so values printed as text, or deparsed by Citus for its
 * workers, read back as the same values.
 */
typedef struct CvAsTableOwner
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	bool		citus_set;		/* row_security sent to the Citus workers */
	bool		caller_row_security;	/* the caller's row_security */
} CvAsTableOwner;
extern void CvBecomeTableOwner(Oid owner, CvAsTableOwner *sw);
extern char *CvOperatorClause(Oid typid, const char *lhs, Oid lhstype, const char *rhs, Oid rhstype,
							  bool any);
extern char *CvRoutedClause(Oid typid, const char *col, Oid coltype, const char *rhs, Oid rhstype, bool any,
							Oid *opr);
extern int	CvExecuteCheckedOperator(const char *sql, int nargs, Oid *types, Datum *vals, bool read_only,
									 long count, int paramid, Oid opr);
extern char *CvOperatorClauseOpr(Oid opr, const char *lhs, Oid lhstype, const char *rhs, Oid rhstype,
								 bool any);
extern void CvPinOutputSettings(void);
extern void CvSetSaved(const char *name, const char *value);
extern bool CvCitusLoaded(void);
extern void CvRestoreCaller(CvAsTableOwner *sw);

/* keys.c: destroy the keys of every subject of a text[]; true if one existed */
extern bool CvShredSubjects(Datum subjects);

/* import.c: withdraw n granted consents (one chained ledger entry each), evidence a jsonb object */
extern void CvWithdrawConsents(int n, char **subjects, char **purposes, Datum evidence);
/* import.c: a relcache invalidation (from keys.c's one callback) */
extern void ImportRelcacheInval(Oid relid);
/* import.c: a row of purposes changed (the trigger _consent_changed) */
extern void ImpPurposesChanged(Relation purposes);
/* import.c: the subject hash evidence of hash version 2 stores (false: entries are of version 1) */
extern bool CvEvidenceSubjectHash(const char *subject, int len, uint8 out[32]);
extern uint64 CvConsentStarted(void);

/*
 * consent.c: what a cache read under a snapshot knows of the consent changes:
 * the value of "finished" it saw every committed change up to, and the
 * prepared consent changes (two-phase commit) still in progress for it,
 * which a snapshot it serves must also see in progress (sorted xids).
 */
#define CV_TAG_UNSEEN_MAX	32
typedef struct CvConsentTag
{
	uint64		finished;
	int			nunseen;
	TransactionId unseen[CV_TAG_UNSEEN_MAX];
} CvConsentTag;
extern bool CvConsentSnapshotTag(Snapshot snap, CvConsentTag *tag);
extern bool CvConsentTagValid(Snapshot snap, const CvConsentTag *tag);

/* scache.c: the shared consent cache */
typedef struct CvScache CvScache;
extern int	cv_shared_consent_cache_kb;
extern int	cv_consent_build_delay_ms;
extern Size ScacheShmemSize(void);
extern void ScacheShmemInit(void);
extern const CvScache *CvScacheGet(const char *purpose, Oid cstate_relid, Snapshot snap);
extern bool CvScacheLookup(const CvScache *sc, const char *s, int len, int64 num, int64 now);
extern bool CvScacheAtXactEnd(void);
extern uint64 CvScacheVersion(const CvScache *sc);

/* labels.c */
extern void LabelsInit(void);

/* keys.c: root key, data-key ring and its cache */
typedef struct CvKey
{
	uint32		id;				/* hash key: data_keys.id */
	bool		destroyed;		/* shredded: values under it read as NULL */
	bool		is_subject;		/* a per-subject key */
	int32		version;
	uint32		pad_to;			/* length padding block, 0 = none */
	char		name[NAMEDATALEN];	/* empty for subject keys */
	CvAead	   *aead;			/* key schedule, NULL when destroyed */
	CvMac	   *bidx;			/* HMAC under the HKDF blind-index subkey;
								 * named keys only */
	CvMac	   *mask;			/* HMAC under the HKDF masking subkey (hash
								 * and fake rules); named keys only */
} CvKey;

/*
 * A CvKey * (and everything it points to) stays valid and unchanged for the
 * whole statement that obtained it; memos kept across calls (fn_extra) are
 * valid while CvKeyEpoch() returns the value they were made under.
 */
extern void KeysInit(void);
extern void CvRootKeyMarkStale(void);
extern uint64 CvKeyEpoch(void);
extern CvKey *CvKeyById(uint32 id);
extern CvKey *CvKeyByIdOrNull(uint32 id);
extern CvKey *CvActiveKeyByName(const char *name);
extern CvKey *CvBlindIndexKeyByName(const char *name);
extern CvKey *CvSubjectKey(const char *subject, bool create);
extern bool CvSubjectHash(const char *subject, int len, bool create, uint8 out[32]);
extern void CvRandomNonce(uint8 *nonce);
extern struct _SPI_plan *CvSavedPlan(struct _SPI_plan **slot, const char *sql, int nargs, Oid *types);

/* columns.c: sealing and opening values (protect.c: protected columns) */
extern bytea *CvSealValue(CvKey *key, int type, const char *pt, size_t ptlen,
						  const char *ctx, int ctxlen);
extern size_t CvSealedLen(CvKey *key, size_t ptlen);
extern void CvSealInto(CvKey *key, int type, const char *pt, size_t ptlen,
					   const char *ctx, int ctxlen, uint8 *out);

/* why a value is opened: the decrypt audit and limits tell these apart */
typedef enum CvOpenUse
{
	CV_OPEN_READ,				/* plaintext handed to the caller: decrypt(),
								 * <table>_decrypted */
	CV_OPEN_RESEAL,				/* re-sealed at once, never shown: rotation,
								 * a protected row's context change */
	CV_OPEN_VERIFY,				/* authenticity check of ciphertext written
								 * to a protected column (restore, COPY) */
	CV_OPEN_MASK				/* masked at once in C, only the mask is
								 * returned: <table>_masked, masked_copy */
} CvOpenUse;

/* results of CvOpenEnvelope */
#define CV_OPEN_OK			1	/* authentic: plaintext in pt_out */
#define CV_OPEN_FAILED		0	/* not authentic (or context presence differs) */
#define CV_OPEN_DESTROYED	(-1)	/* its key was shredded */
#define CV_OPEN_NO_KEY		(-2)	/* no such key (only when missing_ok) */

extern int	CvOpenEnvelope(const CvEnvelope *env, const char *ctx, int ctxlen,
						   CvOpenUse use, bool missing_ok, char *pt_out, size_t *ptlen);
extern bool CvOpenValue(const CvEnvelope *env, const char *ctx, int ctxlen,
						CvOpenUse use, char *pt_out, size_t *ptlen);

/* protect.c: the row context of protected columns */
extern bool CvContextTypeSupported(Oid typid);
extern void CvAppendRowContext(StringInfo buf, Oid base, Datum value);
extern void CvParseOrError(const bytea *value, int type, CvEnvelope *env);
extern bytea *CvTextToEnvelope(const char *s, size_t len, CvEnvelope *env);
extern bool CvTextToEnvelopeBuf(const char *s, size_t len, CvEnvelope *env, uint8 *buf);
extern text *CvEnvelopeAsText(bytea *sealed);
extern bytea *CvBlindMac(CvKey *key, const char *pt, size_t ptlen);

/* blind.c: blind indexes bound to a column and truncated */
extern bytea *CvBlindIndex(CvKey *key, const char *binding, int bits,
						   const char *pt, size_t ptlen);

#endif							/* CUSTOMER_VAULT_H */
