/**
 * What the NXIA command bundles share, so that their output reads the same:
 * durations as typed and printed ({@link org.nxia.shell.support.Text}), the
 * arithmetic of every {@code bench:*} table ({@link org.nxia.shell.support.BenchStats}) and a
 * VM's sections in a snapshot file ({@link org.nxia.shell.support.VmSnapshotFile}).
 * Exported for {@code org.nxia.shell.systemvm}, the System VM's commands, which
 * live apart so that an assembly without the System VM need not carry its
 * control bundle.
 *
 * <p>1.2: {@link org.nxia.shell.support.GuestKit}, where the guest kit's images are.
 */
@Export
@Version("1.2.0")
package org.nxia.shell.support;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
