package org.nxia.portal.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.portal.api.DoorbellLink;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code portal:*}: create, list, inspect and (un)map Portal regions. */
@Component(service = PortalCommands.class, property = {"osgi.command.scope=portal",
        "osgi.command.function=create", "osgi.command.function=list", "osgi.command.function=map",
        "osgi.command.function=unmap", "osgi.command.function=info", "osgi.command.function=dump",
        "osgi.command.function=connect", "osgi.command.function=disconnect"})
public final class PortalCommands {

    private final Portals portals;

    @Activate
    public PortalCommands(@Reference Portals portals) {
        this.portals = portals;
    }

    @Descriptor("create a region; with --file it is backed by that file and keeps its content across restarts")
    public String create(
            @Descriptor("back the region with this file (reopened with its content if it exists)") @Parameter(names = {"-f", "--file"}, absentValue = "") String file,
            @Descriptor("who owns it") @Parameter(names = {"-o", "--owner"}, absentValue = "shell") String owner,
            @Descriptor("the most a VM may be granted: ro or rw") @Parameter(names = {"-r", "--rights"}, absentValue = "rw") String rights,
            @Descriptor("region name: 1 to 15 of a-z 0-9 _ -") String name,
            @Descriptor("size, a multiple of 4K up to 256M (e.g. 2M)") String size) {
        PortalRegion r = portals.create(name, parseSize(size), owner, Rights.parse(rights),
                file.isEmpty() ? null : Path.of(file).toAbsolutePath());
        return "portal " + r.name() + ": " + r.size() + " bytes" + r.file().map(f -> " backed by " + f).orElse(" (anonymous)");
    }

    @Descriptor("list the regions")
    public String list() {
        List<List<String>> rows = new ArrayList<>();
        for (PortalRegion r : portals.list()) {
            List<String> vms = new ArrayList<>();
            for (PortalMapping m : portals.mappings()) {
                if (m.region().equals(r.name())) {
                    vms.add(m.vmId() + (m.mapped() ? "" : "(unmapped)"));
                }
            }
            rows.add(List.of(r.name(), Long.toString(r.size()), r.rights().toString(), r.owner(),
                    r.file().map(Path::toString).orElse("anonymous"), vms.isEmpty() ? "-" : String.join(" ", vms)));
        }
        if (rows.isEmpty()) {
            return "no portal regions (portal:create makes one)";
        }
        return table(List.of("name", "bytes", "rights", "owner", "backing", "vms"), rows);
    }

    @Descriptor("map a region into a VM whose profile grants it (device portal:name=<region>)")
    public String map(@Descriptor("VM id") String vm, @Descriptor("region name") String name) {
        PortalMapping m = portals.map(vm, name);
        return "%s mapped into %s at 0x%x (%s)".formatted(name, vm, m.gpa(), m.rights());
    }

    @Descriptor("remove a region from a VM; the guest's next access to it stops the VM")
    public String unmap(@Descriptor("VM id") String vm, @Descriptor("region name") String name) {
        portals.unmap(vm, name);
        return name + " unmapped from " + vm;
    }

    @Descriptor("make a VM's doorbell for a region raise the region's interrupt in another VM (one with virtio-pmem:region=<region>)")
    public String connect(@Descriptor("the VM whose guest rings") String from, @Descriptor("the VM that takes the interrupt") String to,
            @Descriptor("region name") String name) {
        DoorbellLink l = portals.connect(from, to, name);
        return "%s's doorbell for %s raises GSI %d in %s, %s".formatted(from, name, l.gsi(), to,
                l.inHypervisor() ? "inside the hypervisor (no host thread per ring)" : "through the VMM (this backend has no irqfd)");
    }

    @Descriptor("undo portal:connect")
    public String disconnect(@Descriptor("the VM whose guest rings") String from, @Descriptor("the VM that takes the interrupt") String to,
            @Descriptor("region name") String name) {
        for (DoorbellLink l : portals.links()) {
            if (l.fromVm().equals(from) && l.toVm().equals(to) && l.region().equals(name)) {
                l.close();
                return from + "'s doorbell for " + name + " no longer reaches " + to;
            }
        }
        throw new IllegalArgumentException(from + "'s doorbell for " + name + " is not connected to " + to + " (portal:info " + name + " lists the links)");
    }

    @Descriptor("show a region: size, rights, backing, the structure at its start, and its VMs")
    public String info(@Descriptor("region name") String name) {
        PortalRegion r = region(name);
        StringBuilder out = new StringBuilder();
        out.append("name:     ").append(r.name()).append('\n');
        out.append("size:     ").append(r.size()).append(" bytes\n");
        out.append("owner:    ").append(r.owner()).append('\n');
        out.append("rights:   ").append(r.rights()).append(" (most a VM may get)\n");
        out.append("backing:  ").append(r.file().map(Path::toString).orElse("anonymous shared memory")).append('\n');
        out.append("contents: ").append(structure(r.segment())).append('\n');
        for (PortalMapping m : portals.mappings()) {
            if (m.region().equals(name)) {
                out.append("vm:       %s %s %s, doorbell at 0x%x, %d rings%n".formatted(m.vmId(), m.rights(),
                        m.mapped() ? "at 0x" + Long.toHexString(m.gpa()) : "unmapped", m.doorbellGpa(), m.rings()));
            }
        }
        for (DoorbellLink l : portals.links()) {
            if (l.region().equals(name)) {
                out.append("link:     %s rings GSI %d in %s, %s%n".formatted(l.fromVm(), l.gsi(), l.toVm(),
                        l.inHypervisor() ? "in the hypervisor" : "through the VMM"));
            }
        }
        return out.toString();
    }

    @Descriptor("hex dump of part of a region")
    public String dump(
            @Descriptor("first byte") @Parameter(names = {"-s", "--start"}, absentValue = "0") long start,
            @Descriptor("bytes to show, at most 64K") @Parameter(names = {"-n", "--length"}, absentValue = "256") long length,
            @Descriptor("region name") String name) {
        MemorySegment s = region(name).segment();
        if (start < 0 || length < 0 || length > 65536 || start > s.byteSize() - Math.min(length, s.byteSize())) {
            throw new IllegalArgumentException("range %d +%d is outside the region's %d bytes (at most 64K at a time)"
                    .formatted(start, length, s.byteSize()));
        }
        StringBuilder out = new StringBuilder();
        for (long line = start; line < start + length; line += 16) {
            out.append("%08x ".formatted(line));
            StringBuilder ascii = new StringBuilder();
            for (long i = line; i < line + 16 && i < start + length; i++) {
                byte b = s.get(ValueLayout.JAVA_BYTE, i);
                out.append(' ').append("%02x".formatted(b & 0xff));
                ascii.append(b >= 0x20 && b < 0x7f ? (char) b : '.');
            }
            out.append("  ").append(ascii).append('\n');
        }
        return out.toString();
    }

    private PortalRegion region(String name) {
        return portals.find(name).orElseThrow(() -> new IllegalArgumentException("no portal " + name + " (portal:list shows the regions)"));
    }

    /** Names the structure whose magic is at offset 0, so a dump can be read. */
    private static String structure(MemorySegment s) {
        int magic = s.get(ValueLayout.JAVA_INT, 0);
        return switch (magic) {
            case BlockArena.MAGIC -> "block arena (%d blocks of %d bytes)".formatted(s.get(ValueLayout.JAVA_INT, 12), s.get(ValueLayout.JAVA_INT, 8));
            case SpscRing.MAGIC -> "SPSC ring (%d data bytes)".formatted(s.get(ValueLayout.JAVA_INT, 8));
            case MpmcRing.MAGIC -> "MPMC ring (%d slots of %d bytes)".formatted(s.get(ValueLayout.JAVA_INT, 8), s.get(ValueLayout.JAVA_INT, 12));
            default -> "no Portal structure at offset 0 (magic 0x%08x)".formatted(magic);
        };
    }

    static long parseSize(String text) {
        String t = text.trim().toUpperCase(Locale.ROOT);
        long unit = switch (t.isEmpty() ? ' ' : t.charAt(t.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1;
        };
        try {
            long n = Long.parseLong(unit == 1 ? t : t.substring(0, t.length() - 1));
            if (n < 0 || n > Long.MAX_VALUE / unit) {
                throw new NumberFormatException();
            }
            return n * unit;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a size: bytes or a number with K, M or G");
        }
    }

    private static String table(List<String> header, List<List<String>> rows) {
        int[] widths = new int[header.size()];
        for (int i = 0; i < header.size(); i++) {
            widths[i] = header.get(i).length();
        }
        for (List<String> row : rows) {
            for (int i = 0; i < row.size(); i++) {
                widths[i] = Math.max(widths[i], row.get(i).length());
            }
        }
        StringBuilder out = new StringBuilder();
        row(out, header, widths);
        for (List<String> row : rows) {
            row(out, row, widths);
        }
        return out.toString();
    }

    private static void row(StringBuilder out, List<String> cells, int[] widths) {
        for (int i = 0; i < widths.length; i++) {
            String c = cells.get(i);
            out.append(c);
            if (i < widths.length - 1) {   // no trailing blanks after the last column
                out.append(" ".repeat(widths[i] - c.length() + 2));
            }
        }
        out.append('\n');
    }
}
