package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.image.ElfImage;

/** The image cache holds untrusted files: bounded by their bytes, not by their number. */
class ImageCacheTest {

    private static Path image(Path dir, int i, int size) throws Exception {
        ElfBuilder b = ElfBuilder.minimal();
        b.trailing = size;
        Path p = dir.resolve("g" + i + ".elf");
        Files.write(p, b.build());
        return p;
    }

    @Test
    void manyLargeImagesStayWithinTheByteBound(@TempDir Path dir) throws Exception {
        long bound = 1 << 20;
        ImageCache cache = new ImageCache(bound);
        List<Path> paths = new ArrayList<>();
        for (int i = 0; i < 40; i++) {   // 40 x 300 KiB: 12 MiB offered, more entries than the old count bound (32)
            paths.add(image(dir, i, 300 << 10));
            cache.load(paths.getLast());
            assertTrue(cache.cachedBytes() <= bound, "held " + cache.cachedBytes() + " bytes after " + (i + 1) + " images");
        }
        ElfImage last = cache.load(paths.getLast());
        assertSame(last, cache.load(paths.getLast()), "a recent image is served from the cache");
        assertNotSame(cache.load(paths.getFirst()), cache.load(paths.get(1)), "old ones were let go and are read again");
    }

    @Test
    void theLeastRecentlyUsedImageGoesFirst(@TempDir Path dir) throws Exception {
        ImageCache cache = new ImageCache(3 * (300 << 10));
        Path a = image(dir, 0, 300 << 10);
        Path b = image(dir, 1, 300 << 10);
        Path c = image(dir, 2, 300 << 10);
        ElfImage ia = cache.load(a);
        ElfImage ib = cache.load(b);
        cache.load(a);   // a is now more recent than b
        cache.load(c);   // a, b, c do not all fit: b goes
        assertSame(ia, cache.load(a));
        assertNotSame(ib, cache.load(b), "b was the least recently used");
        assertTrue(cache.cachedBytes() <= 3 * (300 << 10));
    }

    /** Images that fill the bound exactly are all kept, and the bytes held say so. */
    @Test
    void imagesFillingTheBoundExactlyAreKept(@TempDir Path dir) throws Exception {
        Path a = image(dir, 0, 100 << 10);
        Path b = image(dir, 1, 100 << 10);
        long each = Files.size(a);
        ImageCache one = new ImageCache(each);
        assertSame(one.load(a), one.load(a), "an image of exactly the bound is kept");
        assertEquals(each, one.cachedBytes());
        ImageCache two = new ImageCache(2 * each);
        ElfImage ia = two.load(a);
        two.load(b);
        assertSame(ia, two.load(a), "the second image fills the bound; nothing goes");
        assertEquals(2 * each, two.cachedBytes());
    }

    @Test
    void anImageLargerThanTheBoundIsLoadedButNotKept(@TempDir Path dir) throws Exception {
        ImageCache cache = new ImageCache(100 << 10);
        Path big = image(dir, 0, 200 << 10);
        assertNotSame(cache.load(big), cache.load(big));
        assertTrue(cache.cachedBytes() == 0);
    }
}
