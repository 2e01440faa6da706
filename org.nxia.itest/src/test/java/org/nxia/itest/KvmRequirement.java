package org.nxia.itest;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.AssumptionViolatedException;
import org.junit.runner.Description;
import org.junit.runner.notification.Failure;
import org.junit.runner.notification.RunNotifier;
import org.junit.runners.model.InitializationError;
import org.ops4j.pax.exam.junit.PaxExam;

/**
 * The runner for tests that run guests: Pax Exam when /dev/kvm exists.
 * Without it every test FAILS, with one exception: a host where KVM cannot
 * exist at all (this kernel is itself a PVM guest, and PVM does not nest).
 * {@code .ci/run} checks for exactly that and then sets {@value #ENV} to the
 * reason; each test is then reported as skipped with "not run: reason" —
 * visible and counted, never a silent pass.
 *
 * <p>The check happens here, in the test driver, because Pax Exam reports an
 * assumption that fails inside the framework as a pass.
 */
public final class KvmRequirement extends PaxExam {

    static final String ENV = "NXIA_KVM_UNAVAILABLE";

    public KvmRequirement(Class<?> klass) throws InitializationError {
        super(klass);
    }

    @Override
    public void run(RunNotifier notifier) {
        if (Files.exists(Path.of("/dev/kvm"))) {
            super.run(notifier);
            return;
        }
        String reason = System.getenv(ENV);
        for (Description test : getDescription().getChildren()) {
            notifier.fireTestStarted(test);
            if (reason != null && !reason.isBlank()) {
                System.out.println("NOT RUN: " + test.getMethodName() + ": " + reason);
                notifier.fireTestAssumptionFailed(new Failure(test, new AssumptionViolatedException("not run: " + reason)));
            } else {
                notifier.fireTestFailure(new Failure(test, new AssertionError(
                        "/dev/kvm is missing: this test runs a real guest on KVM. Run the tests on a host with KVM "
                                + "(./nxia doctor says what this host lacks).")));
            }
            notifier.fireTestFinished(test);
        }
    }
}
