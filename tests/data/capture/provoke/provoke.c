// SPDX-License-Identifier: GPL-2.0
/*
 * provoke.ko: make the kernel print one kind of report on its console, for
 * recording the console logs in tests/data/ (Debian's 6.1 kernel has no lkdtm).
 *
 *   insmod provoke.ko action=warn|bug|null|hung|spin [secs=N]
 *
 * warn  WARN(1, ...)                       -> "WARNING: CPU: ..."
 * bug   BUG()                              -> "kernel BUG at ..." + oops
 * null  read through a NULL pointer        -> "BUG: kernel NULL pointer dereference" + "Oops:"
 * hung  sleep uninterruptibly for secs     -> "INFO: task insmod:... blocked for more than"
 *                                             (with a small kernel.hung_task_timeout_secs)
 * spin  busy loop, preemption off, secs    -> "watchdog: BUG: soft lockup" and/or an RCU stall
 *
 * Loading always fails with -EAGAIN (after the action) so the module can be
 * loaded again; for bug/null the insmod process dies in the oops instead.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/preempt.h>
#include <linux/string.h>

static char *action = "warn";
module_param(action, charp, 0444);
MODULE_PARM_DESC(action, "warn, bug, null, hung or spin");

static int secs = 10;
module_param(secs, int, 0444);
MODULE_PARM_DESC(secs, "seconds for hung and spin");

/* volatile so the compiler keeps the load through NULL */
static int * volatile provoke_null_ptr;

static noinline void provoke_spin(int seconds)
{
	unsigned long end = jiffies + (unsigned long)seconds * HZ;

	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
}

static int __init provoke_init(void)
{
	pr_info("provoke: action=%s secs=%d\n", action, secs);

	if (!strcmp(action, "warn"))
		WARN(1, "provoke: requested warning\n");
	else if (!strcmp(action, "bug"))
		BUG();
	else if (!strcmp(action, "null"))
		pr_info("provoke: read %d\n", *provoke_null_ptr);
	else if (!strcmp(action, "hung"))
		msleep(secs * 1000);
	else if (!strcmp(action, "spin"))
		provoke_spin(secs);
	else
		pr_err("provoke: unknown action '%s'\n", action);

	pr_info("provoke: done\n");
	return -EAGAIN;
}

module_init(provoke_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Provoke kernel console reports for bpf-audit-harness test data");
