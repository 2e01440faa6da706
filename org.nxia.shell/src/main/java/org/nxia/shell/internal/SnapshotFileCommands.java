package org.nxia.shell.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import javax.crypto.SecretKey;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.nxia.shell.support.Text;
import org.nxia.snapshot.api.SectionInfo;
import org.nxia.snapshot.api.SnapshotFormatException;
import org.nxia.snapshot.api.SnapshotInfo;
import org.nxia.snapshot.api.SnapshotKeys;
import org.nxia.snapshot.api.SnapshotReader;
import org.osgi.service.component.annotations.Component;

/**
 * Gogo commands on snapshot files, with no VM involved: snapshot:list, snapshot:info,
 * snapshot:verify, snapshot:key. A snapshot file is hostile input: every command reads it
 * through {@link SnapshotReader}, which checks it before it says anything about it.
 */
@Component(service = SnapshotFileCommands.class, property = {"osgi.command.scope=snapshot",
        "osgi.command.function=list", "osgi.command.function=info", "osgi.command.function=verify",
        "osgi.command.function=key"})
public final class SnapshotFileCommands {

    /** Where snapshots go unless a path says otherwise: -Dnxia.snapshot.dir, else ~/.local/share/nxia/snapshots. */
    static Path defaultDirectory() {
        String dir = System.getProperty("nxia.snapshot.dir");
        return dir != null ? Path.of(dir) : Path.of(System.getProperty("user.home"), ".local", "share", "nxia", "snapshots");
    }

    static final String KEY_HELP = "key file of an encrypted snapshot (32 bytes, raw or hex; owner-only: snapshot:key makes one)";

    @Descriptor("list the snapshot files in a directory (default: ~/.local/share/nxia/snapshots or -Dnxia.snapshot.dir)")
    public String list(@Descriptor("directory") @Parameter(names = {"-d", "--dir"}, absentValue = "") String dir) throws IOException {
        Path d = dir.isEmpty() ? defaultDirectory() : Path.of(dir);
        if (!Files.isDirectory(d)) {
            return "no snapshots: " + d + " does not exist";
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(d)) {
            files = s.filter(Files::isRegularFile).sorted().limit(1000).toList();
        }
        StringBuilder out = new StringBuilder(String.format("%-32s %10s %-9s %s%n", "FILE", "SIZE", "KIND", "STATE"));
        for (Path f : files) {
            String kind;
            String state;
            try (SnapshotReader r = SnapshotReader.open(f)) {
                SnapshotInfo i = r.info();
                kind = i.encrypted() ? "encrypted" : "plain";
                state = "RAM " + Text.size(i.ramSize()) + " (" + Text.size(i.ramStoredBytes()) + " stored), "
                        + i.sections().size() + " sections";
            } catch (SnapshotFormatException e) {
                kind = "-";
                state = "not a valid snapshot: " + e.getMessage();
            }
            out.append(String.format("%-32s %10s %-9s %s%n", f.getFileName(), Text.size(Files.size(f)), kind, state));
        }
        return files.isEmpty() ? "no snapshots in " + d : out.toString().stripTrailing();
    }

    @Descriptor("show a snapshot's header, host requirements and sections (checked first)")
    public String info(
            @Descriptor(KEY_HELP) @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("snapshot file") String file) throws IOException, SnapshotFormatException {
        try (SnapshotReader r = open(Path.of(file), key)) {
            return describe(r.info());
        }
    }

    @Descriptor("check every hash (and, with the key, every encrypted chunk) of a snapshot; says OK or what is wrong")
    public String verify(
            @Descriptor(KEY_HELP) @Parameter(names = {"-k", "--key"}, absentValue = "") String key,
            @Descriptor("snapshot file") String file) throws IOException, SnapshotFormatException {
        try (SnapshotReader r = open(Path.of(file), key)) {
            SnapshotInfo i = r.verify();
            return "OK " + file + ": " + i.sections().size() + " sections, RAM " + Text.size(i.ramSize())
                    + (i.encrypted() ? (i.authenticated() ? ", encrypted, every chunk authenticated with the key"
                            : ", encrypted: structure and hashes checked; give --key to check the chunks") : "");
        }
    }

    @Descriptor("write a new random AES-256 key file for encrypted snapshots (owner-only; refuses to overwrite)")
    public String key(@Descriptor("key file to create") String file) throws IOException {
        Path p = Path.of(file);
        if (Files.exists(p)) {
            throw new IllegalArgumentException(file + " exists: a key file is never overwritten (snapshots made with it would be lost)");
        }
        SnapshotKeys.write(p, SnapshotKeys.generate());
        return "key written to " + file + " (mode 0600); keep it: an encrypted snapshot cannot be read without it";
    }

    private static SnapshotReader open(Path file, String key) throws IOException, SnapshotFormatException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("no snapshot file " + file);
        }
        if (key.isEmpty()) {
            return SnapshotReader.open(file);
        }
        SecretKey k = SnapshotKeys.load(Path.of(key));
        return SnapshotReader.open(file, k);
    }

    static String describe(SnapshotInfo i) {
        StringBuilder s = new StringBuilder();
        s.append("format      ").append(i.majorVersion()).append('.').append(i.minorVersion()).append('\n');
        s.append("encrypted   ").append(i.encrypted() ? (i.authenticated() ? "yes (checked with the key)" : "yes (no key given)") : "no").append('\n');
        s.append("requires    ").append(i.requirements().architecture()).append(", backend ").append(i.requirements().backend())
                .append(", cpu signature ").append(i.requirements().cpu().length).append(" bytes, features ")
                .append(i.requirements().features().length).append(" bytes\n");
        s.append("file        ").append(i.fileLength()).append(" bytes\n");
        s.append("RAM         ").append(Text.size(i.ramSize())).append(", ").append(Text.size(i.ramStoredBytes())).append(" stored\n");
        s.append(String.format("%-28s %-9s %12s %12s  %s%n", "SECTION", "KIND", "OFFSET", "LENGTH", "SHA-256"));
        for (SectionInfo sec : i.sections()) {
            s.append(String.format("%-28s %-9s %12d %12d  %s%n", sec.name(), sec.kind().name().toLowerCase(java.util.Locale.ROOT),
                    sec.offset(), sec.length(), sec.sha256().substring(0, Math.min(16, sec.sha256().length()))));
        }
        return s.toString().stripTrailing();
    }
}
