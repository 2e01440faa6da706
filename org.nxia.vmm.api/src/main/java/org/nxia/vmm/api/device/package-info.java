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
 */
@Export
@Version("1.1.0")
package org.nxia.vmm.api.device;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
