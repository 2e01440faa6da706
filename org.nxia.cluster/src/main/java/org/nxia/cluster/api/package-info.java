/**
 * One NXIA node's administration as a remote service: {@link org.nxia.cluster.api.NodeAdmin},
 * exported by each node of a cluster through OSGi Remote Service Admin and imported by the
 * others. Everything that crosses the wire is a record of this package with its own
 * {@code serialVersionUID}; guest images travel by name (the guest kit of the node that runs
 * them), never as host paths.
 *
 * <p>1.1: pre-copy migration: {@code NodeAdmin.openRam}, {@code receivePages}, {@code restore(String, String)},
 * {@code discard};
 * {@link org.nxia.cluster.api.Moved#how()} and {@link org.nxia.cluster.api.Moved#sentWhileRunning()}.
 */
@Export
@Version("1.1.0")
package org.nxia.cluster.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
