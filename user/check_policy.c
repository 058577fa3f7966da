// SPDX-License-Identifier: GPL-2.0
/*
 * wsaudit check-policy: loads a policy as trace and agent would, and says either that it is
 * valid, with what it contains, or exactly what is wrong with it.  For CI of policy files.
 */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "policy.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wsaudit check-policy POLICY\n"
		"\n"
		"Validates a policy file (YAML) and prints \"POLICY: ok\" and a summary, or the\n"
		"first error as FILE:LINE:COLUMN: key: reason.\n"
		"\n"
		"  -h, --help  this text\n"
		"\n"
		"Exit status: 0 valid, 2 invalid or usage error.\n");
}

static void print_list(const char *what, const struct policy_list *l)
{
	printf("  %-18s", what);
	if (!l->n)
		printf(" (none)");
	for (size_t i = 0; i < l->n; i++)
		printf(" %s", l->v[i]);
	printf("\n");
}

static void summary(const struct policy *p)
{
	printf("  %-18s", "bridge.opcodes");
	for (unsigned int op = 0; op < 16; op++)
		if (policy_bridge_opcode(p, op))
			printf(" %s", policy_opcode_name(op));
	printf("\n");
	print_list("bridge.functions", &p->bridge_functions);
	print_list("bridge.files", &p->bridge_files);
	print_list("transport.files", &p->transport_files);
	print_list("targets.exe", &p->exe);
	for (size_t i = 0; i < p->nconn; i++) {
		const struct policy_conn_rule *r = &p->conn[i];

		printf("  identity.connection %s%s%s prefix \"%s\" decode %s%s%s\n",
		       policy_source_name(r->from), r->name ? " " : "", r->name ? r->name : "",
		       r->prefix, policy_decode_name(r->decode), r->claim ? " claim " : "",
		       r->claim ? r->claim : "");
	}
	for (size_t i = 0; i < p->nmessage; i++)
		printf("  identity.message   %s%s%s\n", p->message[i].json,
		       p->message[i].unless_equals ? " unless equal to " : "",
		       p->message[i].unless_equals ? p->message[i].unless_equals : "");
	for (size_t i = 0; i < p->nctx; i++)
		printf("  identity.context   %s arg %s\n", p->ctx[i].function, p->ctx[i].arg);
	print_list("identity.ownership", &p->ownership);
	print_list("messages.type", &p->type_fields);
	print_list("messages.known_types", &p->known_types);
	for (size_t i = 0; i < p->nqueues; i++)
		printf("  queues             %s arg %s%s%s\n", p->queues[i].function,
		       p->queues[i].arg, p->queues[i].consumer ? " consumer " : "",
		       p->queues[i].consumer ? p->queues[i].consumer : "");
	/* What fails `wsaudit run`: the kinds whose severity is error (docs/run.md). */
	printf("  %-18s %s\n", "delivery.severity", policy_severity_name(p->delivery_severity));
	printf("  %-18s %s\n", "unjudged.severity", policy_severity_name(p->unjudged_severity));
	if (!p->runs.on)
		return;
	print_list("runs.key", &p->runs.key);
	print_list("runs.start", &p->runs.start);
	print_list("runs.end", &p->runs.end);
	print_list("runs.required", &p->runs.required);
	printf("  %-18s %us\n", "runs.timeout", p->runs.timeout_s);
	printf("  %-18s %s\n", "runs.severity", policy_severity_name(p->runs.severity));
}

int cmd_check_policy(int argc, char **argv)
{
	int parsed;
	struct cli_simple_opts o;
	char err[POLICY_ERR_LEN];
	struct policy *p;

	parsed = cli_parsed(cli_parse_simple(argc, argv, CLI_OPERAND, "POLICY", &o, err,
					     sizeof(err)),
			    &o.help, "check-policy", err, usage);
	if (parsed != CLI_GO_ON)
		return parsed;
	p = policy_load(o.operand, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	printf("%s: ok\n", o.operand);
	summary(p);
	policy_free(p);
	return EXIT_OK;
}
