/**
 * Host-side access to a VM's virtio-vsock device without a socket file: a
 * {@code virtio-vsock} device of a VM (found in
 * {@code VirtualMachine.devices()}) is a {@link org.nxia.device.virtio.vsock.VsockEndpoint}.
 * The Unix-socket convention for processes outside the JVM is in docs/vsock.md.
 */
@Export
@Version("1.1.0")
package org.nxia.device.virtio.vsock;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
