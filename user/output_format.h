/* SPDX-License-Identifier: GPL-2.0 */
/* How records are written (user/output.h), on its own for the parsers of the options. */
#ifndef WSAUDIT_OUTPUT_FORMAT_H
#define WSAUDIT_OUTPUT_FORMAT_H

enum output_format {
	OUTPUT_TEXT,
	OUTPUT_JSON,
};

#endif
