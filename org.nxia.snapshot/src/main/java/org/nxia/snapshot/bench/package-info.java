/**
 * Benchmark hooks for the snapshot file, called by the shell's {@code bench} commands; they
 * change with the benchmarks.
 */
@Export
@Version("1.0.0")
package org.nxia.snapshot.bench;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
