package org.nxia.vmm.internal;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicInteger;

import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.Synic;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.GracefulShutdown;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;

/** Micro-VMs and Linux VMs on an {@link InMemoryHypervisor}, with stand-in devices that count their closes. */
final class TestVms {

    /** Devices closed so far, over every VM these factories built. */
    final AtomicInteger closedDevices = new AtomicInteger();
    /** The interrupt line the last "mmio" device got, or null. */
    volatile InterruptLine lastLine;
    /** What the last "mmio" device was given. */
    volatile DeviceContext lastContext;
    /** What the last "vmbus" stand-in's claim of the SynIC gave; the SynIC changes its host saw. */
    volatile Optional<Synic> lastSynic;
    /** Whether the "vmbus" stand-in's guest can be asked to shut down; how often it was asked. */
    volatile boolean shutdownAskable;
    final java.util.concurrent.atomic.AtomicInteger shutdownsAsked = new java.util.concurrent.atomic.AtomicInteger();
    final java.util.concurrent.atomic.AtomicInteger synicChanges = new java.util.concurrent.atomic.AtomicInteger();
    /** Whether the "uart" and "i8042" stand-ins save (as nothing) and restore, so a Linux VM can be saved. */
    volatile boolean platformSaved;
    /** The states restored into "mmio" devices, in order. */
    final List<String> restoredStates = new CopyOnWriteArrayList<>();
    /** The region the last "portal" stand-in mapped (the host's view). */
    volatile MemorySegment lastRegion;
    /** The region every "portal-file" stand-in maps, and the file it says the region lives in (null: none). */
    final MemorySegment fileRegion = Arena.ofAuto().allocate(1L << 20, 4096);
    volatile Path regionFile = Path.of("/srv/nxia/regions/pf.img");
    /** Run as an "mmio" stand-in takes its saved state: what a test wants to know of that moment. */
    volatile Runnable onDeviceRestore = () -> { };

    private final Map<String, DeviceFactory> factories = Map.of(
            "uart", factory("uart", c -> {
                c.claimPorts(0x3f8, 8, idle());
                c.claimIrq(4);
            }),
            "i8042", factory("i8042", c -> c.claimPorts(0x60, 5, idle())),
            // a Portal region "px" of 2 MiB, mapped while the VM is made, as the portal device does
            "portal", factory("portal", c -> {
                lastRegion = Arena.ofAuto().allocate(2L << 20, 4096);
                c.mapPortal("px", lastRegion, false, 0);
            }),
            // a file-backed Portal region "pf": one region for every VM, as the platform maps a region it holds,
            // said to live in regionFile (the core only records the path; the content is this segment)
            "portal-file", factory("portal-file", c -> c.mapPortal("pf", fileRegion, Optional.ofNullable(regionFile), false, 0)),
            // a VMBus server: claims the SynIC; its hypercalls answer 0x5c5c, its SynIC changes are counted
            "vmbus", factory("vmbus", c -> {
                lastSynic = c.claimSynic(new SynicHost() {
                    @Override
                    public void synicChanged(int vcpu, long control, long eventPage, long messagePage) {
                        synicChanges.incrementAndGet();
                    }

                    @Override
                    public long hypercall(int vcpu, long control, long input, long output) {
                        return 0x5c5c;
                    }
                });
                lastContext = c;
            }),
            "mmio", factory("mmio", c -> {
                c.claimMmio(4096, new MmioDevice() {
                    @Override
                    public void write(long offset, int size, long value) {
                    }

                    @Override
                    public long read(long offset, int size) {
                        return 0x7472_6976;   // "virt"
                    }
                });
                lastLine = c.claimIrq().orElse(null);
                lastContext = c;
            }));

    Map<String, DeviceFactory> factories() {
        return factories;
    }

    VmCore micro(InMemoryHypervisor hv, ExecutorService threads, Duration destroyWait, DeviceConfig... devices) {
        VmProfile profile = VmProfile.of(Path.of("test.elf")).withDevices(List.of(devices));
        ElfImage image = ElfImage.parse(ElfBuilder.minimal().build(), "test.elf");
        return new VmCore("vm-micro", new MicroVm(profile, image, new HostCalls()), hv, threads, factories, destroyWait);
    }

    VmCore linux(InMemoryHypervisor hv, ExecutorService threads, Path dir, int vcpus, Duration destroyWait,
                 DeviceConfig... devices) throws IOException {
        Path kernel = Files.write(dir.resolve("bzImage"), TestKernel.image());
        // without ACPI: these tests read the devices' announcements on the command line
        LinuxProfile profile = LinuxProfile.of(kernel, null).withVcpus(vcpus).withMemory(LinuxProfile.MIN_MEMORY)
                .withDevices(List.of(devices)).withAcpi(false);
        return new VmCore("vm-linux", new LinuxVm(profile, hv.info()), hv, threads, factories, destroyWait);
    }

    private interface Wiring {
        void wire(DeviceContext context);
    }

    private DeviceFactory factory(String type, Wiring wiring) {
        return new DeviceFactory() {
            @Override
            public String type() {
                return type;
            }

            @Override
            public String description() {
                return "a stand-in " + type;
            }

            @Override
            public Device create(DeviceConfig config, DeviceContext context) {
                wiring.wire(context);
                if (type.equals("mmio")) {
                    return new Stand(type, config) {
                        /** Saves its "state" option; refuses to be restored from "bad". */
                        @Override
                        public byte[] saveState() {
                            return config.parameters().getOrDefault("state", "").getBytes(StandardCharsets.UTF_8);
                        }

                        @Override
                        public void restoreState(byte[] saved) {
                            String text = new String(saved, StandardCharsets.UTF_8);
                            if (text.equals("bad")) {
                                throw new IllegalArgumentException("mmio: state 'bad' refused");
                            }
                            restoredStates.add(text);
                            onDeviceRestore.run();
                        }
                    };
                }
                if (type.startsWith("portal") || (platformSaved && (type.equals("uart") || type.equals("i8042")))) {
                    return new Stand(type, config) {
                        /** A region is the VM's memory, not the device's: nothing of its own to save. */
                        @Override
                        public byte[] saveState() {
                            return new byte[0];
                        }

                        @Override
                        public void restoreState(byte[] saved) {
                        }
                    };
                }
                if (type.equals("vmbus")) {
                    // can ask its guest to shut down once askable; counts each time it is asked
                    class Graceful extends Stand implements GracefulShutdown {
                        Graceful() {
                            super(type, config);
                        }

                        @Override
                        public boolean requestShutdown() {
                            shutdownsAsked.incrementAndGet();
                            return shutdownAskable;
                        }
                    }
                    return new Graceful();
                }
                return new Stand(type, config);
            }
        };
    }

    /** A stand-in device: counts its close; cannot be saved. */
    private class Stand implements Device {
        private final String type;
        private final DeviceConfig config;

        Stand(String type, DeviceConfig config) {
            this.type = type;
            this.config = config;
        }

        @Override
        public String type() {
            return type;
        }

        @Override
        public Record state() {
            return config;
        }

        @Override
        public void close() {
            closedDevices.incrementAndGet();
        }
    }

    private static PortDevice idle() {
        return new PortDevice() {
            @Override
            public void write(int port, int size, int value) {
            }

            @Override
            public int read(int port, int size) {
                return 0;
            }
        };
    }
}
