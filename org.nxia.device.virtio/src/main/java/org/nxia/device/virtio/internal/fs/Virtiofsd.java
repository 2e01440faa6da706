package org.nxia.device.virtio.internal.fs;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Debian's virtiofsd (QEMU's C daemon, in {@code qemu-system-common}) for one device: it serves
 * {@code shared} over a vhost-user socket in a directory of its own (mode 0700), logging to a
 * file there. Closing it stops the daemon and removes the directory.
 */
final class Virtiofsd implements VirtioFs.BackEnd {

    static final Path BINARY = Path.of("/usr/lib/qemu/virtiofsd");
    static final List<String> CACHE_MODES = List.of("auto", "always", "none");
    static final List<String> SANDBOXES = List.of("namespace", "chroot");
    /** How much of its log an error quotes. */
    private static final int LOG_TAIL = 600;

    private final Path dir;
    private final Process process;

    private Virtiofsd(Path dir, Process process) {
        this.dir = dir;
        this.process = process;
    }

    static Virtiofsd start(Path shared, String cache, String sandbox) throws IOException {
        if (!Files.isExecutable(BINARY)) {
            throw new IOException(BINARY + " is missing: virtio-fs needs Debian's virtiofsd (apt-get install qemu-system-common)");
        }
        Path dir = Files.createTempDirectory("nxia-virtiofs-", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        try {
            Process p = new ProcessBuilder(BINARY.toString(), "--socket-path=" + dir.resolve("vhost.sock"), "-o", "source=" + shared,
                    "-o", "cache=" + cache, "-o", "sandbox=" + sandbox, "-o", "log_level=warn")
                    .redirectErrorStream(true).redirectOutput(dir.resolve("virtiofsd.log").toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
            return new Virtiofsd(dir, p);
        } catch (IOException e) {
            delete(dir);
            throw e;
        }
    }

    @Override
    public Path socket() {
        return dir.resolve("vhost.sock");
    }

    @Override
    public long pid() {
        return process.pid();
    }

    @Override
    public boolean alive() {
        return process.isAlive();
    }

    @Override
    public String logTail() {
        try {
            String log = Files.readString(dir.resolve("virtiofsd.log")).strip();
            return log.length() <= LOG_TAIL ? log : "..." + log.substring(log.length() - LOG_TAIL);
        } catch (IOException e) {
            return "";
        }
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(2, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(2, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        delete(dir);
    }

    private static void delete(Path dir) {
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            // a temporary directory left behind; nothing else to do
        }
    }
}
