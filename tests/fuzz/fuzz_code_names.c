// SPDX-License-Identifier: GPL-2.0
/*
 * What user/pysym.c makes of a names record (struct evt_code_names, docs/names.md): its bytes
 * are the traced process's, copied by the walk.  The input is the record (zero-filled past the
 * end), its first byte choosing the interpreter's layout; the type objects sit at fixed
 * addresses the fuzzer can name.  Whatever the bytes, a record is taken or refused, and a
 * frame named from it has NUL-terminated names within their bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyproc.h"
#include "pysym.h"
#include "wsaudit/events.h"

#define CODE_TYPE 0x1000
#define STR_TYPE 0x2000
#define BYTES_TYPE 0x3000
/* No such process: nothing can be read, the record alone names the frame. */
#define GONE 0x3ffffff0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct evt_code_names r;
	struct pyproc_info info;
	struct pysym_hit hit;
	struct pysym *s;
	int lasti;

	if (size < 3)
		return 0;
	memset(&info, 0, sizeof(info));
	if (pyproc_offsets_from_table(3, 9 + data[0] % 4, &info))
		return 0;
	info.off.code_type_addr = CODE_TYPE;
	info.unicode_type_addr = data[1] & 1 ? STR_TYPE : 0;
	info.bytes_type_addr = data[1] & 2 ? BYTES_TYPE : 0;
	lasti = (int8_t)data[2] * 2;
	data += 3;
	size -= 3;
	memset(&r, 0, sizeof(r));
	memcpy(&r, data, size < sizeof(r) ? size : sizeof(r));
	s = pysym_new(4);
	if (!s)
		return 0;
	if (!pysym_learn(s, GONE, &info, &r) &&
	    !pysym_resolve_carried(s, GONE, &info, r.code, lasti, &hit)) {
		if (strlen(hit.sym->function) >= PYSYM_NAME_MAX ||
		    strlen(hit.sym->name) >= PYSYM_NAME_MAX ||
		    strlen(hit.sym->file) >= PYSYM_FILE_MAX)
			abort();
		pysym_sym_put(hit.sym);
	}
	pysym_free(s);
	return 0;
}
