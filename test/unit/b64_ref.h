/*
 * test/unit/b64_ref.h: base64 the plain way, six bits at a time, for the
 * unit tests (test_core.c, b64_guard.c) to hold envelope.c's encoder to.
 */
#ifndef CV_B64_REF_H
#define CV_B64_REF_H

#include <stddef.h>
#include <stdint.h>

static size_t
ref_base64(const uint8_t *src, size_t len, char *dst)
{
	static const char ref_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t		o = 0,
				bit;

	for (bit = 0; bit < len * 8; bit += 6)
	{
		unsigned	v = 0,
					k;

		for (k = 0; k < 6; k++)
		{
			size_t		b = bit + k;

			v = (v << 1) | (b < len * 8 ? (src[b / 8] >> (7 - b % 8)) & 1 : 0);
		}
		dst[o++] = ref_abc[v];
	}
	while (o % 4 != 0)
		dst[o++] = '=';
	return o;
}

#endif
