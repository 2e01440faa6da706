package org.nxia.shell.systemvm.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.crypto.SecretKey;

import org.nxia.control.api.Generation;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.snapshot.api.SnapshotFormatException;
import org.nxia.snapshot.api.SnapshotInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * A {@link SystemVmSnapshot} in a snapshot file: the VM's sections ({@link VmSnapshotFile}) and
 * three of its own: {@code systemvm.profile} (what it was booted from), {@code systemvm.agent}
 * (the agent's generation and secret of the saved moment) and {@code systemvm.files} (the size
 * and modification time of each host file the VM reads again when restored: its kernel,
 * initramfs and disk images). The file is always encrypted, as it holds the secret. A restore
 * refuses a file whose host files are gone or changed: a root image rebuilt since the save
 * would not be the disk the saved guest's page cache describes.
 */
final class SystemVmSnapshotFile {

    private static final int MAX_FILES = 64;
    static final String PROFILE = "systemvm.profile";
    static final String AGENT = "systemvm.agent";
    static final String FILES = "systemvm.files";

    /** A host file as it was when the VM was saved. */
    record HostFile(Path path, long size, long modifiedMillis) {

        static HostFile of(Path path) throws IOException {
            return new HostFile(path, Files.size(path), Files.getLastModifiedTime(path).toMillis());
        }

        /** Null when the file is as it was, else what changed. */
        String changed() throws IOException {
            HostFile now;
            try {
                now = of(path);
            } catch (NoSuchFileException e) {
                return path + " is gone";
            }
            if (now.size != size || now.modifiedMillis != modifiedMillis) {
                return path + " changed since the snapshot (" + size + " bytes then, " + now.size + " now"
                        + (now.modifiedMillis != modifiedMillis ? "; modified since" : "") + ")";
            }
            return null;
        }
    }

    private SystemVmSnapshotFile() {
    }

    /** The host files a restore of {@code profile} reads: kernel, initramfs, every device's {@code path}. */
    static Set<Path> hostFiles(LinuxProfile profile) {
        Set<Path> files = new LinkedHashSet<>();
        files.add(profile.kernel());
        if (profile.initrd() != null) {
            files.add(profile.initrd());
        }
        for (DeviceConfig d : profile.devices()) {
            String path = d.parameters().get("path");
            if (path != null) {
                files.add(Path.of(path));
            }
        }
        return files;
    }

    static SnapshotInfo write(SystemVmSnapshot snapshot, Path file, SecretKey key, SaveProgress progress) throws IOException {
        if (key == null) {
            throw new IllegalArgumentException("a System VM's snapshot holds its agent's secret: it is written encrypted only (give a key)");
        }
        List<HostFile> files = new ArrayList<>();
        for (Path p : hostFiles(snapshot.profile())) {
            files.add(HostFile.of(p));
        }
        Map<String, byte[]> extra = new LinkedHashMap<>();
        extra.put(PROFILE, VmSnapshotFile.spec(snapshot.profile()));
        extra.put(AGENT, agent(snapshot.generation(), snapshot.secret()));
        extra.put(FILES, files(files));
        return VmSnapshotFile.write(snapshot.vm(), file, key, extra, progress);
    }

    /** Reads a System VM's snapshot file and checks that the host files it needs are as they were. */
    static SystemVmSnapshot read(Path file, SecretKey key) throws IOException, SnapshotFormatException {
        VmSnapshotFile.Contents c = VmSnapshotFile.readWhole(file, key);
        for (String name : List.of(PROFILE, AGENT, FILES)) {
            if (!c.extra().containsKey(name)) {
                throw new IllegalArgumentException(file + " is not a System VM's snapshot (it has no section " + name
                        + "): vm:restore starts a micro-VM's");
            }
        }
        if (!(VmSnapshotFile.spec(c.extra().get(PROFILE)) instanceof LinuxProfile profile)) {
            throw new IllegalArgumentException("section " + PROFILE + " is not a Linux VM's profile");
        }
        if (!(c.vm().spec() instanceof LinuxProfile)) {
            throw new IllegalArgumentException("the saved VM is not a Linux VM");
        }
        for (HostFile f : files(c.extra().get(FILES))) {
            String why = f.changed();
            if (why != null) {
                throw new IllegalArgumentException("cannot restore " + file + ": " + why);
            }
        }
        Agent agent = agent(c.extra().get(AGENT));
        return new SystemVmSnapshot(profile, c.vm(), agent.secret(), agent.generation());
    }

    record Agent(long generation, byte[] secret) {
    }

    static byte[] agent(long generation, byte[] secret) {
        return VmSnapshotFile.encode(out -> {
            out.writeLong(generation);
            out.writeShort(secret.length);
            out.write(secret);
        });
    }

    static Agent agent(byte[] section) {
        return VmSnapshotFile.decode("section " + AGENT, section, in -> {
            long generation = in.readLong();
            int n = in.readUnsignedShort();
            if (generation < 0 || n < Generation.MIN_SECRET || n > Generation.MAX_SECRET) {
                throw new IllegalArgumentException("section " + AGENT + " has generation " + generation + " and a secret of " + n
                        + " bytes (" + Generation.MIN_SECRET + ".." + Generation.MAX_SECRET + ")");
            }
            byte[] secret = in.readNBytes(n);
            if (secret.length != n) {
                throw new EOFException();
            }
            return new Agent(generation, secret);
        });
    }

    static byte[] files(List<HostFile> files) {
        return VmSnapshotFile.encode(out -> {
            out.writeInt(files.size());
            for (HostFile f : files) {
                out.writeUTF(f.path().toString());
                out.writeLong(f.size());
                out.writeLong(f.modifiedMillis());
            }
        });
    }

    static List<HostFile> files(byte[] section) {
        return VmSnapshotFile.decode("section " + FILES, section, in -> {
            int n = in.readInt();
            if (n < 0 || n > MAX_FILES) {
                throw new IllegalArgumentException("section " + FILES + " names " + n + " files (0.." + MAX_FILES + ")");
            }
            List<HostFile> files = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                files.add(new HostFile(Path.of(in.readUTF()), in.readLong(), in.readLong()));
            }
            return files;
        });
    }
}
