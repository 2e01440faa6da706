package org.nxia.gemini.testsvc;

/** A host service whose class is not public, in a package of its own: as a bundle's implementation class often is. */
public final class Hidden {
    private Hidden() {
    }

    public static Object service() {
        return new Impl();
    }

    static final class Impl {
        public long answer() {
            return 42;
        }
    }
}
