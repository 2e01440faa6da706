/**
 * Benchmark hooks shared by the VMM, its backends and the shell's
 * {@code bench} commands, and the one percentile definition of every bench
 * table ({@link org.nxia.vmm.bench.Percentiles}, since 1.1). Not part of the VMM API: they change with the
 * benchmarks. Kept off {@link org.nxia.vmm.api.VirtualMachine} and
 * {@link org.nxia.vmm.spi.Vcpu} so that neither carries them.
 */
@Export
@Version("1.1.0")
package org.nxia.vmm.bench;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
