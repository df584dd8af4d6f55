/* insn_count.c: QEMU TCG plugin counting executed guest instructions, exactly and repeatably.
 *
 * Build: cc -shared -fPIC -O2 -o insn_count.so tools/insn_count.c
 * Use:   qemu-system-arm ... -plugin ./insn_count.so,mark=0x<addr>,out=<file>
 *        qemu-arm -plugin ./insn_count.so,mark=0x<addr> ./app
 * Every executed instruction adds one to a counter (an inline add per instruction, so a
 * translation block left early by an exception is still counted exactly). Each time the
 * instruction at `mark` (the entry of tz_platform_mark; the Thumb bit is ignored) executes,
 * the running count is recorded. At exit: "total <n>" and one "mark <count>" line per mark,
 * to the file `out`, else to stderr (qemu_plugin_outs would need `-d plugin` to show).
 * Debian ships no qemu-plugin.h, so the parts of the v1 plugin API used here are declared
 * below (QEMU 7.2; plain C ABI, checked by QEMU through qemu_plugin_version). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, vcpu_udata_cb cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t count;
static uint64_t mark_addr;
static int have_mark;
static uint64_t *marks;
static size_t n_marks, cap_marks;
static const char *out_path;

static void on_mark(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    if (n_marks == cap_marks) {
        size_t cap = cap_marks ? cap_marks * 2 : 1024;
        uint64_t *p = realloc(marks, cap * sizeof *p);
        if (p == NULL) {
            return;
        }
        marks = p;
        cap_marks = cap;
    }
    marks[n_marks++] = count;
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &count, 1);
        if (have_mark && (qemu_plugin_insn_vaddr(insn) & ~(uint64_t)1) == mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_atexit(qemu_plugin_id_t id, void *udata)
{
    size_t i;
    FILE *f = out_path ? fopen(out_path, "w") : stderr;
    (void)id;
    (void)udata;
    if (f == NULL) {
        fprintf(stderr, "insn_count: cannot write %s\n", out_path);
        f = stderr;
    }
    fprintf(f, "total %llu\n", (unsigned long long)count);
    for (i = 0; i < n_marks; i++) {
        fprintf(f, "mark %llu\n", (unsigned long long)marks[i]);
    }
    if (f != stderr) {
        fclose(f);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const struct qemu_info_t *info,
                                                               int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            mark_addr = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1;
            have_mark = 1;
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = argv[i] + 4;
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (use mark=0x<addr>, out=<path>)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
