package org.nxia.snapshot.api;

/** Told how far a long save or restore is, in bytes of guest RAM; called from the saving thread. */
@FunctionalInterface
public interface SaveProgress {

    SaveProgress NONE = (done, total) -> { };

    void progress(long done, long total);
}
