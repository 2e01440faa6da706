/**
 * The device SPI: a {@link org.nxia.vmm.api.device.DeviceFactory} service
 * offers a device type that VM profiles name ({@code uart},
 * {@code debug-exit:port=0xf4}); the VMM creates one
 * {@link org.nxia.vmm.api.device.Device} per VM and hands it a
 * {@link org.nxia.vmm.api.device.DeviceContext} through which it claims
 * ports and MMIO windows. A device bundle installed later is offered to the
 * next VM.
 *
 * <p>1.1: {@code Device.saveState()}/{@code restoreState(byte[])} for snapshots, apart from
 * the counters of {@code state()}.
 *
 * <p>2.0: the context's guest memory, interrupt lines, doorbells and shared mappings are the
 * backend SPI's types ({@code org.nxia.vmm.spi}), no longer {@code org.nxia.vmm.api}'s; and
 * {@code DeviceContext.sharedRam()}, for devices served by another process (vhost-user).
 */
@Export
@Version("2.2.0")
package org.nxia.vmm.api.device;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
