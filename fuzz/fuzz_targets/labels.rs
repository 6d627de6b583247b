//! Every label-list parser on the same bytes (RAF-DB, AffectNet, CelebA both layouts and its
//! partition file, age-gender, CLAP/LAP, FG-NET).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use swinface_data::formats::{affectnet, age_gender, celeba, fgnet, lap, raf};

thread_local! {
    static DIR: RefCell<tempfile::TempDir> = RefCell::new(tempfile::tempdir().unwrap());
}

fuzz_target!(|data: &[u8]| {
    DIR.with(|dir| {
        let dir = dir.borrow();
        let root = dir.path();
        let file = root.join("label.txt");
        std::fs::write(&file, data).unwrap();
        for split in [raf::RafSplit::Train, raf::RafSplit::Test] {
            let _ = raf::read_raf(&file, root, split);
        }
        let _ = affectnet::read_affectnet(&file, root);
        let _ = celeba::read_swinface_label(&file, root);
        let _ = celeba::read_celeba_attr(&file, root);
        let _ = celeba::read_partition(&file);
        let _ = lap::read_lap(&file, root);
        std::fs::create_dir_all(root.join("IMDB")).unwrap();
        std::fs::write(root.join("IMDB/label.txt"), data).unwrap();
        let _ = age_gender::read_age_gender_source(root, "IMDB");
        let _ = fgnet::read_fgnet(&file, root, fgnet::FgnetSplit::All);
    });
});
