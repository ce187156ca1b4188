/*-------------------------------------------------------------------------
 * gcm_provider_choice.c
 *		The AES-256-GCM implementation crypto.c seals with is the one
 *		EVP_CIPHER_fetch() selects (REV27).  OpenSSL picks an implementation
 *		by name and properties (default_properties of the configuration);
 *		crypto.c's direct path looks the name up again in the chosen
 *		provider's table, where the properties are not visible.  With the
 *		test provider twogcm_prov.so (AES-256-GCM twice: fips=no first,
 *		fips=yes second) and default_properties = ?fips=yes, EVP selects
 *		the fips=yes one: no context of the fips=no one may be made, not
 *		even by the self-test.
 *
 *		Usage: gcm_provider_choice /absolute/path/to/twogcm_prov.so
 *		(sets OPENSSL_CONF to a configuration it writes in /tmp)
 *-------------------------------------------------------------------------
 */
#include "crypto.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/opensslv.h>

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/evp.h>
#include <openssl/provider.h>

int
main(int argc, char **argv)
{
	char		conf[] = "/tmp/cv_gcm_provider_choice.XXXXXX";
	int			fd;
	FILE	   *f;
	void	   *dso;
	int		   *count;
	EVP_CIPHER *c;
	CvAead	   *a;
	uint8_t		key[CV_KEY_LEN] = {7},
				nonce[12] = {1},
				pt[64] = {2},
				ct[64],
				back[64],
				tag[16];
	int			failures = 0;
	const char *desc;

	if (argc != 2 || argv[1][0] != '/')
	{
		fprintf(stderr, "usage: %s /absolute/path/to/twogcm_prov.so\n", argv[0]);
		return 2;
	}
	if ((fd = mkstemp(conf)) < 0 || (f = fdopen(fd, "w")) == NULL)
	{
		perror("mkstemp");
		return 2;
	}
	fprintf(f,
			"openssl_conf = openssl_init\n"
			"[openssl_init]\nproviders = provider_sect\nalg_section = algorithm_sect\n"
			"[provider_sect]\ndefault = default_sect\ntwogcm = twogcm_sect\n"
			"[default_sect]\nactivate = 1\n"
			"[twogcm_sect]\nmodule = %s\nactivate = 1\n"
			"[algorithm_sect]\ndefault_properties = ?fips=yes\n", argv[1]);
	fclose(f);
	setenv("OPENSSL_CONF", conf, 1);

	/* what EVP selects under this configuration */
	c = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	desc = c != NULL ? EVP_CIPHER_get0_description(c) : NULL;
	unlink(conf);
	if (c == NULL || desc == NULL || strcmp(desc, "twogcm fips=yes") != 0)
	{
		fprintf(stderr, "FAIL: the test provider is not what EVP selects (%s)\n",
				desc != NULL ? desc : "nothing");
		return 1;
	}
	EVP_CIPHER_free(c);
	dso = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
	count = dso != NULL ? (int *) dlsym(dso, "twogcm_newctx_count") : NULL;
	if (count == NULL)
	{
		fprintf(stderr, "FAIL: twogcm_newctx_count not found in the loaded provider\n");
		return 1;
	}

	/* resolve (the self-test included), then seal and open a value */
	printf("AES-256-GCM path: %s\n", cv_aead_path());
	a = cv_aead_new(key);
	if (a == NULL ||
		!cv_aead_seal(a, nonce, NULL, 0, NULL, 0, pt, sizeof(pt), ct, tag) ||
		cv_aead_open(a, nonce, NULL, 0, NULL, 0, ct, sizeof(ct), tag, back) != 1 ||
		memcmp(back, pt, sizeof(pt)) != 0)
	{
		fprintf(stderr, "FAIL: seal/open under the test provider\n");
		failures++;
	}
	cv_aead_free(a);
	printf("contexts made: fips=no %d, fips=yes %d\n", count[0], count[1]);
	if (count[0] != 0)
	{
		fprintf(stderr, "FAIL: %d contexts of the fips=no implementation made, though EVP selected fips=yes\n",
				count[0]);
		failures++;
	}
	if (count[1] == 0)
	{
		fprintf(stderr, "FAIL: the value was not sealed by the implementation EVP selected\n");
		failures++;
	}
	printf("gcm_provider_choice: %s\n", failures == 0 ? "ok" : "FAILED");
	return failures == 0 ? 0 : 1;
}
#else
int
main(void)
{
	printf("gcm_provider_choice: OpenSSL 1.1, skipped\n");
	return 0;
}
#endif
