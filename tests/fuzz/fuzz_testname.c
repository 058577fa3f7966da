// SPDX-License-Identifier: GPL-2.0
/*
 * What `run` reads from a traced process and writes into CI reports, on hostile bytes:
 * function names and file paths of a stack (a service names its code as it likes) turned
 * into a test name, a PYTEST_CURRENT_TEST value, and the SARIF and JUnit files built from
 * them.  Input: lines "function\tfile", innermost first; the last line is also the value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "testname.h"
#include "testrun.h"

#define MAX_FRAMES 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool all[REPORT_KINDS];
	char *text = strndup((const char *)data, size), *line, *save = NULL, test[512], out[512];
	struct attrib_stack *s = calloc(1, sizeof(*s) + MAX_FRAMES * sizeof(s->frames[0]));
	struct rules_verdict v = { .nviolations = 1 };
	struct frame_view fv = { .name_tests = true, .test = test, .test_via = "stack" };
	struct report *r = report_new("/repo");

	for (int i = 0; i < REPORT_KINDS; i++)
		all[i] = true;
	if (!text || !s || !r)
		goto out;
	s->refs = 1;
	for (line = strtok_r(text, "\n", &save); line && s->nframes < MAX_FRAMES;
	     line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');

		testrun_node_id(line, out, sizeof(out));
		s->frames[s->nframes].function =
			strndup(line, tab ? (size_t)(tab - line) : strlen(line));
		s->frames[s->nframes].file = strdup(tab ? tab + 1 : "");
		s->frames[s->nframes].line = (int)s->nframes;
		s->nframes++;
	}
	s->origin = s->nframes ? 0 : -1;
	fv.stack = s;
	fv.verdict = &v;
	fv.test_why = testname_from_stack(s, "/repo", test, sizeof(test));
	report_frame(r, &fv);
	v.v[0].rule = RULE_ISOLATION_BREACH;
	report_frame(r, &fv);
	/* The writers escape and encode what they were given; where it goes does not matter. */
	report_write_sarif(r, "/dev/null", all);
	report_write_junit(r, "/dev/null", all);
	report_write_baseline(r, "/dev/null");
out:
	report_free(r);
	attrib_stack_put(s);
	free(text);
	return 0;
}
