/*-------------------------------------------------------------------------
 * guc.c
 *		Every customer_vault.* setting and its check and assign hooks.
 *
 * The key-source settings hold only a path or a command, never key bytes,
 * are superuser-only and hidden from SHOW ALL / pg_settings for others.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include <limits.h>

#include "utils/guc.h"
#include "utils/varlena.h"

char	   *cv_root_key_file = NULL;
char	   *cv_root_key_command = NULL;
char	   *cv_previous_root_key_file = NULL;
char	   *cv_purpose = NULL;
int			cv_key_max_age = 365 * 24 * 3600;

/* a changed key source invalidates the root key and every unwrapped data key */
static void
cv_key_source_assign(const char *newval, void *extra)
{
	CvRootKeyMarkStale();
}

/* a purpose is a short printable name, or empty for none */
static bool
cv_purpose_check(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (*newval == NULL)
		return true;
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("A purpose name is at most %d bytes long.", NAMEDATALEN - 1);
		return false;
	}
	for (p = *newval; *p; p++)
	{
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
		{
			GUC_check_errdetail("A purpose name cannot contain control characters.");
			return false;
		}
	}
	return true;
}

/* lock_exempt_roles: a comma-separated list of role names */
static bool
cv_role_list_check(char **newval, void **extra, GucSource source)
{
	char	   *raw;
	List	   *names;
	bool		ok;

	if (*newval == NULL)
		return true;
	raw = pstrdup(*newval);
	ok = SplitIdentifierString(raw, ',', &names);
	list_free(names);
	pfree(raw);
	if (!ok)
		GUC_check_errdetail("List role names separated by commas; quote a name with double quotes.");
	return ok;
}
static const struct config_enum_entry cv_audit_decrypt_options[] = {
	{"off", CV_AUDIT_OFF, false},
	{"statement", CV_AUDIT_STATEMENT, false},
	{"value", CV_AUDIT_VALUE, false},
	{NULL, 0, false}
};

/* define the settings and reserve the prefix */
void
GucInit(void)
{
	DefineCustomStringVariable("customer_vault.root_key_file",
							   "File holding the 256-bit root key as 64 hexadecimal characters.",
							   "The file must have permissions 0600 or 0400.",
							   &cv_root_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, cv_key_source_assign, NULL);

	DefineCustomStringVariable("customer_vault.root_key_command",
							   "Command whose standard output is the root key as 64 hexadecimal characters.",
							   "Use it for a KMS or vault agent instead of root_key_file.",
							   &cv_root_key_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, cv_key_source_assign, NULL);

	DefineCustomStringVariable("customer_vault.previous_root_key_file",
							   "File holding the previous root key, used only while rewrap_keys() moves data keys to the new one.",
							   NULL,
							   &cv_previous_root_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, cv_key_source_assign, NULL);

	DefineCustomStringVariable("customer_vault.purpose",
							   "The processing purpose the session acts under.",
							   "Consent checks answer for this purpose when none is passed.",
							   &cv_purpose,
							   "",
							   PGC_USERSET,
							   0,
							   cv_purpose_check, NULL, NULL);

	DefineCustomIntVariable("customer_vault.consent_cache_size",
							"Most subjects with a live consent that one backend caches for consent checks.",
							"Over all purposes; text subjects take 40 to 90 bytes each, integer subjects two bits per id in their range. A purpose that would go over it is checked by an index probe per row instead.",
							&cv_consent_cache_size,
							1000000, 0, INT_MAX / 2,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	/*
	 * The brake: PGC_SUSET, so only a superuser (or set_decrypt_limit(), which
	 * runs ALTER ROLE ... SET as the extension's owner) sets them, per role;
	 * the capped role cannot SET, RESET or ALTER ROLE them itself.
	 */
	DefineCustomIntVariable("customer_vault.decrypt_limit",
							"Most values one statement may decrypt (0 = no limit).",
							"Set it per role with customer_vault.set_decrypt_limit() or ALTER ROLE ... SET; it applies to the login role.",
							&cv_decrypt_limit,
							0, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("customer_vault.decrypt_rate_limit",
							"Most values a role may decrypt per minute over all its sessions (0 = no limit).",
							"Needs customer_vault in shared_preload_libraries; it applies to the login role.",
							&cv_decrypt_rate_limit,
							0, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("customer_vault.lock_exempt_roles",
							   "Roles that lock_stale_roles() never locks (break-glass accounts), separated by commas.",
							   NULL,
							   &cv_lock_exempt_roles,
							   "",
							   PGC_SUSET,
							   0,
							   cv_role_list_check, NULL, NULL);

	DefineCustomIntVariable("customer_vault.shared_consent_cache_size",
							"Most shared memory the shared consent cache takes, over all databases and purposes.",
							"0 turns the shared cache off. A purpose whose version would not fit is answered by each backend's own cache.",
							&cv_shared_consent_cache_kb,
							262144, 0, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("customer_vault.consent_build_delay",
							"Test only: sleep this long inside each build of a shared consent cache version.",
							"For tests of changes committed while a version is built; never set it in production.",
							&cv_consent_build_delay_ms,
							0, 0, 600000,
							PGC_SUSET, GUC_UNIT_MS | GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							NULL, NULL, NULL);

	DefineCustomIntVariable("customer_vault.key_max_age",
							"Named data keys whose active version is older than this are reported by compliance_report().",
							"A duration such as 365d or 2160h; 0 turns the finding off.",
							&cv_key_max_age,
							365 * 24 * 3600, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("customer_vault.audit_decrypt",
							 "What access_log records of decryptions: off, statement (one row per statement and key) or value (also the subjects).",
							 "Only superusers can change it (also per role or database).",
							 &cv_audit_decrypt,
							 CV_AUDIT_STATEMENT,
							 cv_audit_decrypt_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("customer_vault.audit_wait",
							"How long a statement waits for room in the full decrypt audit queue before it fails.",
							NULL,
							&cv_audit_wait,
							5000, 0, 600000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("customer_vault.audit_queue_share",
							"The share of the decrypt audit queue, in percent, that one database's records may hold.",
							"A database whose records (queued or reserved) hold its share waits for its own writer like for a full queue, then is refused; other databases keep room.",
							&cv_audit_queue_share,
							25, 1, 100,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("customer_vault.audit_queue_size",
							"For tests: the decrypt audit queue slots this session may fill (0 = the queue is always full).",
							NULL,
							&cv_audit_queue_size,
							1024, 0, 1024,
							PGC_SUSET, GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved(CV_GUC_PREFIX);
}
