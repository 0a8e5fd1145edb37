// SPDX-License-Identifier: GPL-2.0
/*
 * kconfig_dump: print the kernel's own view of every Kconfig symbol as JSON lines.
 *
 * Linked against the lkc objects that `make O=OUT olddefconfig` leaves in OUT/scripts/kconfig
 * (everything except conf.o), so the parser and the value calculation are exactly the ones of
 * the tree under test, whatever its version. Built and run by harness/explain.py; by hand:
 *
 *   gcc -O1 -I SRC/scripts/kconfig -I SRC/scripts/include -I OUT/scripts/kconfig \
 *       -o OUT/kconfig_dump harness/kconfig_dump.c OUT/scripts/kconfig/{confdata,expr,\
 *       lexer.lex,menu,parser.tab,preprocess,symbol,util}.o
 *   cd OUT && env srctree=SRC SRCARCH=x86 ARCH=x86_64 CC=gcc LD=ld ... \
 *       ./kconfig_dump --config .config --dump kdump.jsonl Kconfig
 *
 * Options (all repeatable except the Kconfig file, processed in order):
 *   --config FILE          read FILE as `conf --olddefconfig` would (conf_read)
 *   --write FILE           write the resolved configuration to FILE (conf_write): the same
 *                          bytes `make olddefconfig` writes when the environment matches
 *   --dump FILE            write one JSON object per line: a header, every choice, every symbol
 *   --each FILE            `make olddefconfig` of FILE in a child process: read FILE (conf_read)
 *                          and write the result to FILE.resolved (conf_write). Each child starts
 *                          from the state right after parsing, as a fresh `conf` does, so one
 *                          parse (and one run of Kconfig's $(shell,...) compiler probes)
 *                          resolves any number of configs. A FILE that cannot be resolved has
 *                          no FILE.resolved (kmatrix then resolves it with make as before).
 *
 * Only long-standing lkc interfaces are used (rootmenu, struct menu/symbol/property/expr,
 * expr_gstr_print, sym_calc_value), and the menu tree is walked directly
 * rather than through version-specific iteration macros.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/wait.h>

#include "lkc.h"

/* ---- a set of pointers (symbols already printed, choice menus seen) ---- */

struct ptrset {
	const void **slot;
	size_t size;
};

static int ptrset_add(struct ptrset *set, const void *p)
{
	size_t i = ((uintptr_t)p >> 4) * 2654435761u % set->size;

	while (set->slot[i]) {
		if (set->slot[i] == p)
			return 0;
		i = (i + 1) % set->size;
	}
	set->slot[i] = p;
	return 1;
}

static struct ptrset ptrset_new(size_t size)
{
	struct ptrset set = { calloc(size, sizeof(void *)), size };

	if (!set.slot) {
		perror("kconfig_dump");
		exit(3);
	}
	return set;
}

/* ---- JSON output ---- */

static void jstr(FILE *o, const char *s)
{
	if (!s) {
		fputs("null", o);
		return;
	}
	fputc('"', o);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(o, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", o);
		else if (c == '\t')
			fputs("\\t", o);
		else if (c < 0x20)
			fprintf(o, "\\u%04x", c);
		else
			fputc(c, o);
	}
	fputc('"', o);
}

static const char *tri_str(tristate t)
{
	return t == yes ? "y" : t == mod ? "m" : "n";
}

/* Numbers in expressions (`range 1 16`, `depends on NR >= 4`) are untyped symbols, not consts */
static int is_number(const char *name)
{
	char *end;

	if (!name || !*name)
		return 0;
	strtoll(name, &end, 0);
	return *end == '\0';
}

static void jsym(FILE *o, struct symbol *sym)
{
	int literal = (sym->flags & SYMBOL_CONST) || is_number(sym->name);

	sym_calc_value(sym);
	fputs("{\"s\":", o);
	jstr(o, sym->name ? sym->name : "<choice>");
	fputs(",\"v\":", o);
	jstr(o, sym_get_string_value(sym));
	if (sym->type == S_UNKNOWN && !literal)
		fputs(",\"undefined\":true", o);
	if (literal)
		fputs(",\"c\":true", o);
	fputc('}', o);
}

static const char *op_name(enum expr_type t)
{
	switch (t) {
	case E_OR:	return "||";
	case E_AND:	return "&&";
	case E_NOT:	return "!";
	case E_EQUAL:	return "=";
	case E_UNEQUAL:	return "!=";
	case E_LTH:	return "<";
	case E_LEQ:	return "<=";
	case E_GTH:	return ">";
	case E_GEQ:	return ">=";
	case E_RANGE:	return "range";
	default:	return "?";
	}
}

/* An expression as a tree: null (always true), a symbol, or {"op", "a", "b"}. */
static void jexpr(FILE *o, struct expr *e)
{
	if (!e) {
		fputs("null", o);
		return;
	}
	switch (e->type) {
	case E_SYMBOL:
		jsym(o, e->left.sym);
		return;
	case E_NOT:
		fputs("{\"op\":\"!\",\"a\":", o);
		jexpr(o, e->left.expr);
		fputc('}', o);
		return;
	case E_OR:
	case E_AND:
		fprintf(o, "{\"op\":\"%s\",\"a\":", op_name(e->type));
		jexpr(o, e->left.expr);
		fputs(",\"b\":", o);
		jexpr(o, e->right.expr);
		fputc('}', o);
		return;
	case E_EQUAL:
	case E_UNEQUAL:
	case E_LTH:
	case E_LEQ:
	case E_GTH:
	case E_GEQ:
	case E_RANGE:
		fprintf(o, "{\"op\":\"%s\",\"a\":", op_name(e->type));
		jsym(o, e->left.sym);
		fputs(",\"b\":", o);
		jsym(o, e->right.sym);
		fputc('}', o);
		return;
	default:
		fprintf(o, "{\"op\":\"?\",\"type\":%d}", (int)e->type);
		return;
	}
}

/* null (no expression) or {"e": tree, "tri": value, "text": "A [=n] && B [=y]"} as menuconfig prints it */
static void jexpr_value(FILE *o, struct expr *e)
{
	struct gstr gs;

	if (!e) {
		fputs("null", o);
		return;
	}
	gs = str_new();
	fputs("{\"e\":", o);
	jexpr(o, e);
	fprintf(o, ",\"tri\":\"%s\",\"text\":", tri_str(expr_calc_value(e)));
	expr_gstr_print(e, &gs);
	jstr(o, str_get(&gs));
	fputc('}', o);
	str_free(&gs);
}

static void jwhere(FILE *o, const char *file, int line)
{
	fputs(",\"file\":", o);
	jstr(o, file);
	fprintf(o, ",\"line\":%d", line);
}

/* ---- choices ---- */

#define MAX_CHOICES 4096

struct choices {
	struct menu *menu[MAX_CHOICES];
	int count;
};

static int choice_id(struct choices *ch, struct menu *menu)
{
	int i;

	for (i = 0; i < ch->count; i++)
		if (ch->menu[i] == menu)
			return i;
	if (ch->count == MAX_CHOICES) {
		fprintf(stderr, "kconfig_dump: more than %d choices\n", MAX_CHOICES);
		exit(3);
	}
	ch->menu[ch->count] = menu;
	return ch->count++;
}

/* The choice a symbol's menu entry belongs to, through any `if` blocks inside the choice. */
static struct menu *enclosing_choice(struct menu *menu)
{
	struct menu *p = menu->parent;

	while (p && p != &rootmenu && !p->sym && !p->prompt)
		p = p->parent;
	if (p && p != &rootmenu && p->sym && sym_is_choice(p->sym))
		return p;
	return NULL;
}

static void dump_choice(FILE *o, struct choices *ch, int id)
{
	struct menu *menu = ch->menu[id];
	struct menu *child;
	struct property *prompt = menu->prompt;
	const char *sep = "";

	sym_calc_value(menu->sym);
	fprintf(o, "{\"kind\":\"choice\",\"id\":%d,\"prompt\":", id);
	jstr(o, prompt ? prompt->text : NULL);
	fprintf(o, ",\"visible\":\"%s\"", tri_str(menu->sym->visible));
	fputs(",\"dep\":", o);
	jexpr_value(o, menu->dep);
	fputs(",\"prompt_visible\":", o);
	if (prompt)
		jexpr_value(o, prompt->visible.expr);
	else
		fputs("null", o);
	jwhere(o, menu->filename, menu->lineno);
	fputs(",\"members\":[", o);
	for (child = menu->list; child; child = child->next) {
		struct menu *m = child;

		/* members may sit inside `if` blocks of the choice */
		if (!m->sym && m->list) {
			for (m = m->list; m; m = m->next)
				if (m->sym && m->sym->name) {
					fputs(sep, o);
					jstr(o, m->sym->name);
					sep = ",";
				}
			continue;
		}
		if (m->sym && m->sym->name) {
			fputs(sep, o);
			jstr(o, m->sym->name);
			sep = ",";
		}
	}
	fputs("]}\n", o);
}

/* ---- symbols ---- */

static void dump_props(FILE *o, struct symbol *sym, enum prop_type type, const char *key)
{
	struct property *prop;
	const char *sep = "";

	fprintf(o, ",\"%s\":[", key);
	for (prop = sym->prop; prop; prop = prop->next) {
		if (prop->type != type)
			continue;
		fputs(sep, o);
		sep = ",";
		fputs("{\"e\":", o);
		jexpr(o, prop->expr);
		fputs(",\"if\":", o);
		jexpr_value(o, prop->visible.expr);
		jwhere(o, prop->filename, prop->lineno);
		fputc('}', o);
	}
	fputc(']', o);
}

static void dump_prompts(FILE *o, struct symbol *sym)
{
	struct property *prop;
	const char *sep = "";

	fputs(",\"prompts\":[", o);
	for (prop = sym->prop; prop; prop = prop->next) {
		/* `config` has a P_PROMPT, `menuconfig` a P_MENU */
		if (!prop->text || (prop->type != P_PROMPT && prop->type != P_MENU))
			continue;
		fputs(sep, o);
		sep = ",";
		fputs("{\"text\":", o);
		jstr(o, prop->text);
		fputs(",\"visible\":", o);
		jexpr_value(o, prop->visible.expr);
		jwhere(o, prop->filename, prop->lineno);
		fputc('}', o);
	}
	fputc(']', o);
}

static void dump_user_value(FILE *o, struct symbol *sym)
{
	fputs(",\"user\":", o);
	if (!(sym->flags & SYMBOL_DEF_USER)) {
		fputs("null", o);
		return;
	}
	if (sym->type == S_BOOLEAN || sym->type == S_TRISTATE)
		jstr(o, tri_str(sym->def[S_DEF_USER].tri));
	else
		jstr(o, (const char *)sym->def[S_DEF_USER].val);
}

static void dump_symbol(FILE *o, struct menu *menu, int choice)
{
	struct symbol *sym = menu->sym;

	sym_calc_value(sym);
	fputs("{\"kind\":\"symbol\",\"name\":", o);
	jstr(o, sym->name);
	fputs(",\"type\":", o);
	jstr(o, sym_type_name(sym->type));
	fputs(",\"value\":", o);
	jstr(o, sym_get_string_value(sym));
	dump_user_value(o, sym);
	fprintf(o, ",\"visible\":\"%s\",\"changeable\":%s,\"written\":%s",
		tri_str(sym->visible), sym_is_changeable(sym) ? "true" : "false",
		(sym->flags & SYMBOL_WRITE) ? "true" : "false");
	if (choice >= 0)
		fprintf(o, ",\"choice\":%d", choice);
	fputs(",\"dir_dep\":", o);
	jexpr_value(o, sym->dir_dep.expr);
	fputs(",\"rev_dep\":", o);
	jexpr_value(o, sym->rev_dep.expr);
	fputs(",\"implied\":", o);
	jexpr_value(o, sym->implied.expr);
	dump_prompts(o, sym);
	dump_props(o, sym, P_DEFAULT, "defaults");
	dump_props(o, sym, P_SELECT, "selects");
	dump_props(o, sym, P_IMPLY, "implies");
	dump_props(o, sym, P_RANGE, "ranges");
	jwhere(o, menu->filename, menu->lineno);
	fputs("}\n", o);
}

struct walk {
	FILE *out;
	struct ptrset seen;
	struct choices choices;
};

static void walk_menu(struct walk *w, struct menu *menu)
{
	struct menu *child;
	struct symbol *sym = menu->sym;

	if (sym && sym_is_choice(sym)) {
		choice_id(&w->choices, menu);
	} else if (sym && sym->name && ptrset_add(&w->seen, sym)) {
		struct menu *choice = enclosing_choice(menu);

		dump_symbol(w->out, menu, choice ? choice_id(&w->choices, choice) : -1);
	}
	for (child = menu->list; child; child = child->next)
		walk_menu(w, child);
}

static int dump(const char *path)
{
	struct walk *w = calloc(1, sizeof(*w));
	int i;

	if (!w) {
		perror("kconfig_dump");
		return 3;
	}
	w->out = fopen(path, "w");
	if (!w->out) {
		perror(path);
		return 3;
	}
	w->seen = ptrset_new(1 << 17);
	fputs("{\"kind\":\"header\",\"format\":1,\"kernel\":", w->out);
	jstr(w->out, getenv("KERNELVERSION"));
	fputs(",\"srcarch\":", w->out);
	jstr(w->out, getenv("SRCARCH"));
	fputs(",\"title\":", w->out);
	jstr(w->out, rootmenu.prompt ? rootmenu.prompt->text : NULL);
	fputs("}\n", w->out);
	walk_menu(w, &rootmenu);
	for (i = 0; i < w->choices.count; i++)
		dump_choice(w->out, &w->choices, i);
	if (fclose(w->out)) {
		perror(path);
		return 3;
	}
	free(w->seen.slot);
	free(w);
	return 0;
}

/* conf --olddefconfig of one file, in a child: the parent's parsed state stays untouched */
static int resolve_each(const char *config)
{
	char out[4096];
	pid_t pid;
	int status;

	if (snprintf(out, sizeof(out), "%s.resolved", config) >= (int)sizeof(out))
		return 4;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return 5;
	if (pid == 0) {
		if (conf_read(config))
			_exit(2);
		_exit(conf_write(out) ? 3 : 0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "kconfig_dump: %s: not resolved\n", config);
		remove(out);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: kconfig_dump [--config FILE] [--write FILE] [--dump FILE] [--each FILE]... Kconfig\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int i;

	if (argc < 2 || argv[argc - 1][0] == '-')
		usage();
	conf_parse(argv[argc - 1]);
	for (i = 1; i < argc - 1; i += 2) {
		const char *opt = argv[i], *arg = i + 1 < argc - 1 ? argv[i + 1] : NULL;

		if (!arg)
			usage();
		if (!strcmp(opt, "--config")) {
			if (conf_read(arg)) {
				fprintf(stderr, "kconfig_dump: cannot read %s\n", arg);
				return 2;
			}
		} else if (!strcmp(opt, "--write")) {
			if (conf_write(arg)) {
				fprintf(stderr, "kconfig_dump: cannot write %s\n", arg);
				return 3;
			}
		} else if (!strcmp(opt, "--each")) {
			int rc = resolve_each(arg);

			if (rc)
				return rc;
		} else if (!strcmp(opt, "--dump")) {
			int rc = dump(arg);

			if (rc)
				return rc;
		} else {
			usage();
		}
	}
	return 0;
}
