// SPDX-License-Identifier: GPL-2.0
/*
 * What is printed of values the traffic chooses: a Sec-WebSocket-Protocol value (the echo
 * of a client's offer) through rules_redact_subprotocol() into buffers of every size, and
 * the same bytes as a message type.  Whatever the input, the output is bounded and holds
 * no credential: no "eyJ" (base64 of a JSON object's start) and nothing after "jwt." but
 * "[redacted]" (the policy's subprotocol prefix, wherever it is in an entry).  The first byte chooses the output size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

static const char fuzz_policy[] =
	"bridge: {functions: [\"B.*\"]}\n"
	"identity:\n"
	"  connection:\n"
	"    - {from: subprotocol, prefix: \"jwt.\", decode: jwt_b64, claim: sub}\n"
	"messages:\n  type: [type]\n  known_types: [agent_update]\n";

static struct rules *rules;

static void check_subprotocol(const char *out, size_t size)
{
	const char *p;

	if (strlen(out) >= size)
		abort();
	if (strstr(out, "eyJ"))
		abort();
	for (p = out; (p = strstr(p, "jwt.")); p += 4) {
		/* after the first "jwt." of an entry comes the mark, or the cut end */
		if (p[4] && strncmp(p + 4, "[redacted]", 10))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value, out[512], type[64];
	size_t outsz;

	if (!rules) {
		char err[POLICY_ERR_LEN];
		struct policy *p = policy_load_mem("fuzz.yaml", fuzz_policy, strlen(fuzz_policy),
						   err, sizeof(err));

		if (!p)
			abort();
		rules = rules_new(p, false, 0);
		if (!rules)
			abort();
	}
	if (size < 1)
		return 0;
	outsz = 1 + data[0] % sizeof(out);
	value = strndup((const char *)data + 1, size - 1);
	if (!value)
		return 0;
	rules_redact_subprotocol(rules, value, out, outsz);
	check_subprotocol(out, outsz);
	rules_redact_type(rules, value, type, sizeof(type));
	if (strcmp(value, "agent_update") && (strncmp(type, "t#", 2) || strlen(type) != 14))
		abort();
	free(value);
	return 0;
}
