/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The subcommands.  Each takes the arguments after its name (argv[0] is the subcommand) and
 * returns the process exit code: 0 success, 1 runtime failure, 2 usage or policy error.
 */
#ifndef WSAUDIT_COMMANDS_H
#define WSAUDIT_COMMANDS_H

enum exit_code {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,
	EXIT_USAGE = 2,
};

int cmd_trace(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_check_policy(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_check_system(int argc, char **argv);
int cmd_hash_user(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif /* WSAUDIT_COMMANDS_H */
