package org.nxia.vmm.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.image.GuestImageException;

/**
 * Checked guest images by file identity (path, size, modification time): a
 * sandbox that starts the same image many times reads and checks it once.
 * A changed file is read again. The images are untrusted and each may be
 * 256 MiB: the cache holds at most {@link #MAX_BYTES} of them, the least
 * recently used going first.
 */
final class ImageCache {

    static final long MAX_BYTES = 256L << 20;

    private record Key(Path path, long size, long modified) {
    }

    /** In access order: the first is the least recently used. Guarded by this. */
    private final Map<Key, ElfImage> images = new LinkedHashMap<>(16, 0.75f, true);
    private final long maxBytes;
    private long heldBytes;

    ImageCache() {
        this(MAX_BYTES);
    }

    ImageCache(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    /** The file bytes of the images held. */
    synchronized long cachedBytes() {
        return heldBytes;
    }

    ElfImage load(Path image) {
        Path path = image.toAbsolutePath().normalize();
        BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(path, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            throw new GuestImageException(image + ": no such file; build the guests with ./nxia build or give a path to an .elf");
        } catch (IOException e) {
            throw new GuestImageException(image + ": cannot read it (" + e.getMessage() + ")");
        }
        if (!attributes.isRegularFile()) {
            throw new GuestImageException(image + ": not a regular file");
        }
        if (attributes.size() > ElfImage.MAX_FILE_SIZE) {
            throw new GuestImageException(image + ": " + attributes.size() + " bytes is larger than the 256 MiB a guest image may be");
        }
        Key key = new Key(path, attributes.size(), attributes.lastModifiedTime().toMillis());
        synchronized (this) {
            ElfImage cached = images.get(key);
            if (cached != null) {
                return cached;
            }
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new GuestImageException(image + ": cannot read it (" + e.getMessage() + ")");
        }
        ElfImage parsed = ElfImage.parse(bytes, image.toString());
        keep(key, parsed);
        return parsed;
    }

    private synchronized void keep(Key key, ElfImage image) {
        long size = image.bytes().length;
        if (size > maxBytes || images.containsKey(key)) {
            return;
        }
        Iterator<ElfImage> lru = images.values().iterator();
        while (heldBytes + size > maxBytes) {
            heldBytes -= lru.next().bytes().length;
            lru.remove();
        }
        images.put(key, image);
        heldBytes += size;
    }
}
