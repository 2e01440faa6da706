/**
 * Control of a System VM through its guest agent.
 *
 * <p>A {@link org.nxia.control.api.ControlConnector} turns a connected byte
 * stream to the agent (a vsock connection forwarded by the VMM, or a Unix
 * socket in tests) and the VM's secret into an authenticated
 * {@link org.nxia.control.api.AgentSession}: run programs with streamed
 * stdio ({@link org.nxia.control.api.Execution}), configure the guest,
 * quiesce, resume (as a new {@link org.nxia.control.api.Generation} after a snapshot) and shut it down. The wire format is
 * {@code docs/control-protocol.md}. The agent runs inside the guest and is
 * untrusted: every frame it sends is checked, and a bad one ends the session
 * with a {@link org.nxia.control.api.ControlException}.
 *
 * <p>An {@link org.nxia.control.api.ExecRequest} may carry a
 * {@link org.nxia.control.api.Confinement} (Landlock path rules, denied
 * system calls) that the agent applies before execve.
 *
 * <p>{@link org.nxia.control.api.SystemVms} boots System VMs and registers
 * each one's session as an {@code AgentSession} service with the VM's id
 * ({@link org.nxia.control.api.SystemVms#VM_ID}).
 *
 * <p>1.6: {@code SystemVms.clone}: a System VM restored with its RAM mapped copy-on-write from a file;
 * {@code Confinement.Namespace.USER}: a program in a user namespace of its own.
 */
@Export
@Version("1.6.0")
package org.nxia.control.api;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
