/* SPDX-License-Identifier: GPL-2.0 */
/* Stacks for the tests of what is read from them: "function@file:line", innermost first. */
#ifndef WSAUDIT_TEST_STACK_FIXTURE_H
#define WSAUDIT_TEST_STACK_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "attrib.h"

static inline struct attrib_stack *stack_of(const char *const *frames, size_t n, int origin)
{
	struct attrib_stack *s = calloc(1, sizeof(*s) + n * sizeof(s->frames[0]));

	s->refs = 1;
	s->origin = origin;
	s->why = origin < 0 ? UNATTR_NO_APPLICATION_FRAMES : UNATTR_NONE;
	s->nframes = n;
	for (size_t i = 0; i < n; i++) {
		const char *at = strchr(frames[i], '@'), *colon = strrchr(frames[i], ':');

		s->frames[i].function = strndup(frames[i], (size_t)(at - frames[i]));
		s->frames[i].file = strndup(at + 1, (size_t)(colon - at - 1));
		s->frames[i].line = atoi(colon + 1);
	}
	return s;
}

#endif /* WSAUDIT_TEST_STACK_FIXTURE_H */
