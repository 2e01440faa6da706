package org.nxia.itest;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.AssumptionViolatedException;
import org.junit.runner.Description;
import org.junit.runner.notification.Failure;
import org.junit.runner.notification.RunNotifier;
import org.junit.runners.model.InitializationError;
import org.ops4j.pax.exam.junit.PaxExam;

/**
 * The runner for tests that boot a stock Linux kernel: like
 * {@link KvmRequirement} (which it runs), and on a PVM host (kvm_pvm without kvm_intel or
 * kvm_amd) every test is reported as skipped, "not run: PVM host, stock
 * kernel needs hardware virtualization"; a {@link NeedsKernel} class without
 * a kernel to boot is skipped with where to put one. Checked here because Pax Exam reports an
 * assumption that fails inside the framework as a pass.
 */
public final class HardwareVirtualizationRequirement extends PaxExam {

    static final String PVM = "PVM host, stock kernel needs hardware virtualization";
    static final String KERNEL_PROPERTY = "nxia.linux.kernel";
    static final String INITRD_PROPERTY = "nxia.linux.initrd";
    static final String ROOTFS_PROPERTY = "nxia.rootfs";
    static final String STOCK_KERNEL_PROPERTY = "nxia.stock.kernel";
    static final String STOCK_INITRD_PROPERTY = "nxia.stock.initrd";

    /** Marks a test class that boots the kernel and initramfs the properties name. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.TYPE)
    @interface NeedsKernel {
    }

    /** Marks a test class that also boots the root file system image (a file or block device) the property names. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.TYPE)
    @interface NeedsRootfs {
    }

    /** Marks a test class that boots Debian's stock kernel and the initramfs made for it (distro/stock-kernel). */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.TYPE)
    @interface NeedsStockKernel {
    }

    private final boolean needsKernel;
    private final boolean needsRootfs;
    private final boolean needsStockKernel;

    /** Runs the tests, or reports them, when this host can boot Linux; it alone knows a host without KVM. */
    private final KvmRequirement kvm;

    public HardwareVirtualizationRequirement(Class<?> klass) throws InitializationError {
        super(klass);
        this.kvm = new KvmRequirement(klass);
        this.needsKernel = klass.isAnnotationPresent(NeedsKernel.class);
        this.needsRootfs = klass.isAnnotationPresent(NeedsRootfs.class);
        this.needsStockKernel = klass.isAnnotationPresent(NeedsStockKernel.class);
    }

    @Override
    public void run(RunNotifier notifier) {
        String reason = null;
        if (module("kvm_pvm") && !module("kvm_intel") && !module("kvm_amd")) {
            reason = PVM;
        } else if (needsKernel && Files.exists(Path.of("/dev/kvm")) && !bootable()) {
            reason = "no kernel to boot: -D" + KERNEL_PROPERTY + "=bzImage and -D" + INITRD_PROPERTY
                    + "=initramfs (tools/kvm-rig/itest.sh passes LINUX_KERNEL and LINUX_INITRD, or the System VM image when built)";
        } else if (needsRootfs && Files.exists(Path.of("/dev/kvm")) && !readable(System.getProperty(ROOTFS_PROPERTY))) {
            reason = "no root file system image: -D" + ROOTFS_PROPERTY + "=IMAGE (./nxia image rootfs builds one; "
                    + "tools/kvm-rig/itest.sh attaches it to the rig as a virtio drive)";
        } else if (needsStockKernel && Files.exists(Path.of("/dev/kvm"))
                && !(readable(System.getProperty(STOCK_KERNEL_PROPERTY)) && readable(System.getProperty(STOCK_INITRD_PROPERTY)))) {
            reason = "no stock kernel: -D" + STOCK_KERNEL_PROPERTY + "=vmlinuz and -D" + STOCK_INITRD_PROPERTY
                    + "=initramfs (./nxia image stock-kernel builds them; tools/kvm-rig/itest.sh passes them when built)";
        }
        if (reason == null) {
            kvm.run(notifier);
            return;
        }
        for (Description test : getDescription().getChildren()) {
            notifier.fireTestStarted(test);
            System.out.println("NOT RUN: " + test.getMethodName() + ": " + reason);
            notifier.fireTestAssumptionFailed(new Failure(test, new AssumptionViolatedException("not run: " + reason)));
            notifier.fireTestFinished(test);
        }
    }

    private static boolean module(String name) {
        return Files.isDirectory(Path.of("/sys/module", name));
    }

    private static boolean readable(String path) {
        return path != null && Files.isReadable(Path.of(path)) && !Files.isDirectory(Path.of(path));
    }

    private static boolean bootable() {
        String kernel = System.getProperty(KERNEL_PROPERTY);
        String initrd = System.getProperty(INITRD_PROPERTY);
        return kernel != null && Files.isRegularFile(Path.of(kernel)) && initrd != null && Files.isRegularFile(Path.of(initrd));
    }
}
